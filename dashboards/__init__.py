"""The Streamlit app for data stewards and deployment teams (``ecgops dashboard``)."""
