//! `lade search`: Docker Hub's search, or another registry's catalog, with Docker's
//! filters applied to what it answers.

use super::{EngineError, Result};
use crate::registry::{self, ClientOptions, SearchResult};

/// Docker's `--filter`s of a search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// `stars=N`: at least so many stars.
    pub min_stars: u64,
    /// `is-official=true|false`.
    pub official: Option<bool>,
}

impl SearchFilter {
    fn admits(&self, result: &SearchResult) -> bool {
        result.stars >= self.min_stars && self.official.is_none_or(|o| result.official == o)
    }
}

/// What `lade search` is asked for.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// TERM, or REGISTRY/TERM.
    pub term: String,
    pub limit: usize,
    pub filter: SearchFilter,
    pub client: ClientOptions,
}

/// `lade search`: the results the filter admits, in the registry's order.
pub fn search(request: &SearchRequest) -> Result<Vec<SearchResult>> {
    let results =
        registry::search(&request.term, request.limit, &request.client).map_err(|source| {
            EngineError::Remote {
                what: format!("search for {}", request.term),
                source: Box::new(source),
            }
        })?;
    Ok(results
        .into_iter()
        .filter(|r| request.filter.admits(r))
        .collect())
}
