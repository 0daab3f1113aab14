"""hosting-toolkit: versioned, atomic static hosting on CloudFront, S3 and a KeyValueStore."""

__version__ = "0.1.0"
