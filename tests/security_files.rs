//! Attacks from the security sweep, each refused: files, directories and privileges.
