"""The ESCO catalogue: ESCO's download files read, loaded into the ingest store by version, and
looked up while events arrive; quarantined events replayed once a release knows them."""
