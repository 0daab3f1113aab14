"""Edge: the KeyValueStore, the CloudFront Functions that route requests, and their code."""
