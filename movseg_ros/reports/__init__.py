"""`movseg report` building blocks: pipelines run as streams over DAVIS or synthetic clips, and their speed."""
