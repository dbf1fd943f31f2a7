"""The pages of the dashboard (run by ``dashboards/app.py`` through ``st.navigation``)."""
