//! File injection (being written).
