"""The dashboard where the ESCO team reviews the indicators."""
