//! Regular expressions of patch targets and image names, compiled once per process: the same
//! few patterns recur in every overlay of a repository.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use regex::Regex;

/// The compiled form of `pattern`, shared: compiling, and warming a regex's caches, is far
/// costlier than matching.
pub fn compiled(pattern: &str) -> Result<Arc<Regex>, regex::Error> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(regex) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
    {
        return Ok(regex.clone());
    }
    let regex = Arc::new(Regex::new(pattern)?);
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(pattern.to_string(), regex.clone());
    Ok(regex)
}
