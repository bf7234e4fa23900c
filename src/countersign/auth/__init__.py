"""Identity: password and secret hashing, signing keys, access tokens, callers."""
