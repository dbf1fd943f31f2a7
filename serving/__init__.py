"""The BentoML service of ecgops (``serving.service``); built into Bentos by ``ecgops package``."""
