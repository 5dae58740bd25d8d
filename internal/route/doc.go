// Package route indexes subscription patterns for the bus's router: which
// subscribers an event on a topic reaches, at a cost that does not depend on
// how many subscriptions exist.
//
// # Patterns
//
// A pattern is a topic, or a topic with wildcards: '*' matches any run of
// characters, dots included, and '?' exactly one character (see [Match]).
// The index sorts patterns into four shapes and stores each where a topic
// finds it without looking at the others:
//
//   - exact ("worker.task"): a map from the topic;
//   - all ("*"): one list;
//   - below ("worker.*", a literal then ".*"): a map from the literal, looked
//     up with each parent of the topic ("worker", "worker.task", …);
//   - glob (anything else): in a radix tree of literal prefixes (the text
//     before the first wildcard), walked along the topic's bytes, or in one
//     of reversed literal suffixes (the text after the last wildcard),
//     whichever literal is longer; a glob with neither ("*a*", "*.r17.*")
//     is residual: filed by the first 3 bytes of its longest literal run
//     (".r1"), which a topic must hold for the glob to be tried (a set of
//     the bytes pieces start with and a count of pieces per hash bucket
//     let a topic pass over most of its 3-byte pieces without a map
//     lookup, and over all of them if it holds none of those bytes), or,
//     with no run of 3 bytes ("*a*", "?*"), in a short list every topic
//     is matched against.
//
// The exact and below maps outgrow the processor's caches when they hold
// many patterns, and a topic routed for the first time, matching none of
// them, would then wait on memory once for itself and once per parent. So
// from 1,024 keys a Bloom filter of their hashes (16 bits a key, a key's
// 2 bits in one word, so it stays in a near cache) is asked first, and
// turns away all but about 2 % of the keys it lacks; it never turns away
// one it holds (a removed key leaves its bits set until the filter is
// rebuilt from the hashes it keeps, when removed and live keys fill it).
// The topic's hash is computed once, for the filter and the doorkeeper
// below.
//
// Patterns must be valid (the bus validates them): at most 255 bytes, at
// most 8 stars, non-empty dot-separated segments, valid UTF-8.
//
// # Route cache
//
// Route memoises the result per topic, up to a bound; when the cache is
// full a quarter of it is evicted at random, so a flood of topics nobody
// listens to costs bounded memory. A topic is cached the second time it is
// routed within the last few thousand uncached routes (a doorkeeper that
// remembers their hashes), since caching costs several times what matching
// does: a stream of topics each routed once is matched and not cached. Add and Remove keep the cache correct
// without flushing it: an exact pattern updates at most one entry; a below
// pattern and a glob update the cached topics that start with its literal
// prefix (or end with its literal suffix), found through radix trees of
// the cached topics, if there are at most 32 of them. "*", residual globs
// and patterns whose literal more cached topics share go instead to a
// short change log (64 changes) that a cached topic replays, matching only
// those patterns, the next time it is routed (each entry remembers the
// pattern it matched last and the answer, so a pattern added and removed
// again and again is matched once per topic); a topic more than 8 changes
// behind is recomputed. So a change costs the same whatever the number of
// subscriptions, and the work of updating routes follows the topics that
// are routed, not the size of the cache. Each entry counts how many of a
// subscriber's patterns match its topic, so a subscriber with several
// matching patterns appears once and stays until the last of them is
// removed. A route handed out is never modified: a change replaces it, or
// reuses its backing array only where no route handed out can see a
// difference (they are capped at their length, so appending to one
// reallocates); see entry.add.
package route
