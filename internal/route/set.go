package route

// set is a set of subscribers in a slice, with a position index once it
// grows past setIndexAt, so adding and removing cost O(1) for large sets
// and little memory for the common set of one.
type set[S comparable] struct {
	list []S
	idx  map[S]int
}

// setIndexAt is the size from which a set keeps a position index.
const setIndexAt = 16

func (t *set[S]) len() int { return len(t.list) }

// appendTo appends the members to dst.
func (t *set[S]) appendTo(dst []S) []S { return append(dst, t.list...) }

// find returns the position of s, or -1.
func (t *set[S]) find(s S) int {
	if t.idx != nil {
		if i, ok := t.idx[s]; ok {
			return i
		}
		return -1
	}
	for i, v := range t.list {
		if v == s {
			return i
		}
	}
	return -1
}

// add adds s and reports whether it was absent.
func (t *set[S]) add(s S) bool {
	if t.find(s) >= 0 {
		return false
	}
	t.list = append(t.list, s)
	if t.idx != nil {
		t.idx[s] = len(t.list) - 1
	} else if len(t.list) > setIndexAt {
		t.idx = make(map[S]int, len(t.list))
		for i, v := range t.list {
			t.idx[v] = i
		}
	}
	return true
}

// remove removes s and reports whether it was present.
func (t *set[S]) remove(s S) bool {
	i := t.find(s)
	if i < 0 {
		return false
	}
	last := len(t.list) - 1
	t.list[i] = t.list[last]
	var zero S
	t.list[last] = zero
	t.list = t.list[:last]
	if t.idx != nil {
		delete(t.idx, s)
		if i < last {
			t.idx[t.list[i]] = i
		}
		if len(t.list) < setIndexAt/2 {
			t.idx = nil
		}
	}
	return true
}
