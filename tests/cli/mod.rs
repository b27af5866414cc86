//! Stories told through the `ferry` command line.

mod validate;
