//! Stories told through the `ferry` command line.

mod durability;
mod policies;
mod promote;
mod remote;
mod validate;
