// Package storetest is the conformance suite for [eventbus.Store]
// implementations. Every store in this module passes it, and a store written
// elsewhere can run it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) eventbus.Store {
//			st, err := mystore.Open(filepath.Join(t.TempDir(), "events"))
//			require.NoError(t, err)
//			return st
//		})
//	}
//
// [Run] checks the contract written in the Store documentation, as subtests
// in plain words:
//
//   - Append stores a batch in order and atomically. A batch whose Seqs are
//     not strictly increasing, or not above LastSeq, is rejected and leaves
//     nothing behind; so does any other Append that returns an error.
//     Append neither keeps nor modifies the caller's slice.
//   - Every Query field: Pattern (exact topic, "prefix.*", other globs, ""
//     and "*"), Since, AfterSeq, Limit (DefaultQueryLimit when 0, cut to
//     MaxQueryLimit), Newest, and their combinations, compared with a plain
//     reference model built on [eventbus.Match]. Invalid queries are errors.
//   - LastSeq on an empty store and after appends, Seq gaps included.
//   - Events come back intact: ID, Seq, Type, Topic, Payload bytes,
//     Timestamp (by time.Time.Equal), Source, CorrelationID and Metadata
//     (every key and value exactly, at the limits of ValidateMetadata, with
//     nil metadata coming back nil).
//   - Query running during Append sees every batch whole or not at all; run
//     the suite with -race.
//   - Close may be called twice; Append, Query and LastSeq fail after it.
//
// Retention is store-specific, so Run does not test it: each store tests its
// own limits. The store newStore returns must not drop events by age and must
// hold at least 10,005 events, so that the cut to MaxQueryLimit shows: a
// MemoryStore needs WithMaxEvents above its default of 10,000.
//
// Run calls newStore once per subtest, from that subtest, and closes the
// store when the subtest ends; newStore may register its own cleanup too
// (closing twice is part of the contract). Events are built with
// [eventbus.NewEvent]; the suite sets Seq and Timestamp itself.
package storetest
