"""The dashboard where the ESCO team reviews the indicators."""

# Every page and every route of Dash lives under this path.
PREFIX = "/dashboard/"
# Shown under the login form and every page.
ATTRIBUTION = ("This service uses the ESCO classification of the European Commission "
               "(ESCO v1.2.0, © European Union, https://esco.ec.europa.eu)")
# The accessibility statement, served without a log-in (dashboard.login).
STATEMENT_PATH = "/accessibility"
