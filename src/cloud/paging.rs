//! Walking a paged listing whose rules the documentation leaves open:
//! whether `offset` counts records or pages, and whether a server caps a
//! page below the `limit` asked for. A short page proves nothing (a capped
//! server sends short pages that are not the last), so the walk goes on
//! while pages bring entries not seen before, and stops on an empty or
//! repeated page (or once a known total is reached).
//!
//! The offset meaning is tried as records first (the next offset is the
//! number of records received, which is right for capped pages too); if
//! that brings nothing new, pages (offset 1) are tried once. What a server
//! showed is remembered per endpoint and logged once, so later walks cost
//! one call past the last page instead of two.

use std::sync::atomic::{AtomicU8, Ordering};

/// What a server has shown `offset` to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetMeaning {
    /// Not known yet.
    Unknown,
    /// `offset` skips this many records.
    Records,
    /// `offset` is a page number.
    Pages,
}

/// The meaning learned for one endpoint, shared by every walk of it.
#[derive(Debug, Default)]
pub struct Learned(AtomicU8);

impl Learned {
    fn get(&self) -> OffsetMeaning {
        match self.0.load(Ordering::Relaxed) {
            1 => OffsetMeaning::Records,
            2 => OffsetMeaning::Pages,
            _ => OffsetMeaning::Unknown,
        }
    }

    fn learn(&self, endpoint: &str, meaning: OffsetMeaning) {
        let code = match meaning {
            OffsetMeaning::Unknown => return,
            OffsetMeaning::Records => 1,
            OffsetMeaning::Pages => 2,
        };
        if self.0.swap(code, Ordering::Relaxed) != code {
            tracing::info!(
                endpoint,
                ?meaning,
                "the server's paging `offset` counts this"
            );
        }
    }
}

/// One walk through a listing.
pub struct Walk<'a> {
    endpoint: &'static str,
    learned: &'a Learned,
    meaning: OffsetMeaning,
    /// Records received so far (repeats included: they were skipped over).
    received: usize,
    /// Pages asked for so far.
    page: usize,
    /// Whether offset 1 is being tried as a page number after a records
    /// offset brought nothing new.
    trying_pages: bool,
    /// The first page's length: a page's size when `offset` counts pages.
    page_size: usize,
}

impl<'a> Walk<'a> {
    /// A walk of `endpoint`, starting from what was learned of it.
    pub fn new(endpoint: &'static str, learned: &'a Learned) -> Walk<'a> {
        Walk {
            endpoint,
            learned,
            meaning: learned.get(),
            received: 0,
            page: 0,
            trying_pages: false,
            page_size: 0,
        }
    }

    /// The `offset` to ask for next.
    pub fn offset(&self) -> usize {
        match self.meaning {
            OffsetMeaning::Pages => self.page,
            OffsetMeaning::Records | OffsetMeaning::Unknown => self.received,
        }
    }

    /// Whether the page being read tries `offset` as a page number (its
    /// entries' places are then unsure).
    pub fn trying_pages(&self) -> bool {
        self.trying_pages
    }

    /// Where the `i`-th entry of the page being read stands in the whole
    /// listing (the listing keeps one order): entries at one position on
    /// two pages are one entry listed twice, whatever their URLs say.
    pub fn position(&self, i: usize) -> usize {
        match self.meaning {
            OffsetMeaning::Pages => self.page * self.page_size.max(1) + i,
            OffsetMeaning::Records | OffsetMeaning::Unknown => self.received + i,
        }
    }

    /// Takes a page of `got` entries, `fresh` of them new, and says whether
    /// to ask for another. `done` is true when a known total is reached.
    pub fn advance(&mut self, got: usize, fresh: usize, done: bool) -> bool {
        let first = self.page == 0;
        if first {
            self.page_size = got;
        }
        if self.trying_pages {
            self.trying_pages = false;
            if fresh > 0 {
                self.learned.learn(self.endpoint, OffsetMeaning::Pages);
            } else {
                // Offset 1 as records repeats what we have: records it is
                // (an empty answer proves neither).
                self.meaning = OffsetMeaning::Records;
                if got > 0 {
                    self.learned.learn(self.endpoint, OffsetMeaning::Records);
                }
                return false;
            }
        } else if fresh > 0 && !first && self.meaning == OffsetMeaning::Unknown {
            self.meaning = OffsetMeaning::Records;
            self.learned.learn(self.endpoint, OffsetMeaning::Records);
        }
        self.received += got;
        self.page += 1;
        if done {
            return false;
        }
        if fresh > 0 {
            return true;
        }
        if !first && self.meaning == OffsetMeaning::Unknown {
            self.meaning = OffsetMeaning::Pages;
            self.page = 1;
            self.trying_pages = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks a server holding `total` entries that answers at most `cap` a
    /// page and reads `offset` as pages or records; returns the entries
    /// found and the calls made.
    fn walk(learned: &Learned, total: usize, cap: usize, pages: bool) -> (usize, usize) {
        let mut seen = std::collections::HashSet::new();
        let mut walk = Walk::new("test", learned);
        let mut calls = 0;
        loop {
            calls += 1;
            let offset = walk.offset();
            let start = if pages { offset * cap } else { offset };
            let page: Vec<usize> = (start..total.min(start + cap)).collect();
            let fresh = page.iter().filter(|e| seen.insert(**e)).count();
            if !walk.advance(page.len(), fresh, false) || calls > 100 {
                return (seen.len(), calls);
            }
        }
    }

    #[test]
    fn every_entry_is_found_whatever_offset_counts_and_however_pages_are_capped() {
        for pages in [false, true] {
            for (total, cap) in [
                (600, 500),
                (300, 100),
                (7, 500),
                (500, 500),
                (1, 500),
                (0, 500),
            ] {
                let learned = Learned::default();
                let (found, _) = walk(&learned, total, cap, pages);
                assert_eq!(found, total, "pages={pages} total={total} cap={cap}");
            }
        }
    }

    #[test]
    fn what_a_server_showed_is_learned_and_saves_a_call() {
        let learned = Learned::default();
        let (_, first) = walk(&learned, 7, 500, false);
        assert_eq!(first, 3, "page, empty records page, repeated page 1");
        assert_eq!(learned.get(), OffsetMeaning::Records);
        let (found, later) = walk(&learned, 7, 500, false);
        assert_eq!((found, later), (7, 2));

        let pages = Learned::default();
        let (found, _) = walk(&pages, 600, 500, true);
        assert_eq!(found, 600);
        assert_eq!(pages.get(), OffsetMeaning::Pages);
        assert_eq!(walk(&pages, 600, 500, true), (600, 3));
    }

    #[test]
    fn a_known_total_ends_the_walk_without_an_extra_call() {
        let learned = Learned::default();
        let mut walk = Walk::new("test", &learned);
        assert!(!walk.advance(20, 20, true));
    }
}
