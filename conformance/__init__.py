"""bert-conformance harness: drives transformers and the numpy reference on the same drawn cases."""

__version__ = "0.1.0"
