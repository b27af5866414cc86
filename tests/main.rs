//! End-to-end tests: the `ferry` binary run against real repositories.

mod gates;
