"""gdpr-sweep: retention and erasure sweeper for relational databases."""

__version__ = "0.1.0"
