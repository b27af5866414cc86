//! The state store: a trait with transactions, compare-and-swap and ordered scans, and the
//! sled backend. sled is used only here.
