//! Loading and attaching the XDP program, and reading/writing its maps.
