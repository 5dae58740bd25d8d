package route

// radix is a path-compressed byte trie from string keys to values. The
// zero value is an empty tree. Keys are compared byte by byte; a tree of
// reversed keys serves suffix queries (see prefixesOf's rev).
type radix[V any] struct {
	root rnode[V]
}

// rnode is one node: the edge label leading to it, its children sorted by
// the first byte of their labels, and a value if a key ends here.
type rnode[V any] struct {
	label string
	kids  []*rnode[V]
	val   V
	set   bool
}

// child returns the index of the child whose label starts with c, and the
// child, or the index where such a child would go and nil.
func (n *rnode[V]) child(c byte) (int, *rnode[V]) {
	lo, hi := 0, len(n.kids)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.kids[m].label[0] < c {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(n.kids) && n.kids[lo].label[0] == c {
		return lo, n.kids[lo]
	}
	return lo, nil
}

// slot returns the value stored at key, adding key (with a zero value) if
// it is absent. key must not be empty.
func (r *radix[V]) slot(key string) *V {
	n := &r.root
	for {
		if key == "" {
			n.set = true
			return &n.val
		}
		i, c := n.child(key[0])
		if c == nil {
			c = &rnode[V]{label: key, set: true}
			n.kids = append(n.kids, nil)
			copy(n.kids[i+1:], n.kids[i:])
			n.kids[i] = c
			return &c.val
		}
		l := commonPrefix(c.label, key)
		if l < len(c.label) {
			mid := &rnode[V]{label: c.label[:l], kids: []*rnode[V]{c}}
			c.label = c.label[l:]
			n.kids[i] = mid
			c = mid
		}
		n, key = c, key[l:]
	}
}

// get returns the value stored at key, or nil.
func (r *radix[V]) get(key string) *V {
	n := &r.root
	for key != "" {
		_, c := n.child(key[0])
		if c == nil || len(c.label) > len(key) || key[:len(c.label)] != c.label {
			return nil
		}
		n, key = c, key[len(c.label):]
	}
	if !n.set {
		return nil
	}
	return &n.val
}

// del removes key and reports whether it was present.
func (r *radix[V]) del(key string) bool {
	return r.root.del(key)
}

func (n *rnode[V]) del(key string) bool {
	if key == "" {
		if !n.set {
			return false
		}
		var zero V
		n.set, n.val = false, zero
		return true
	}
	i, c := n.child(key[0])
	if c == nil || len(c.label) > len(key) || key[:len(c.label)] != c.label {
		return false
	}
	if !c.del(key[len(c.label):]) {
		return false
	}
	if !c.set {
		switch len(c.kids) {
		case 0:
			copy(n.kids[i:], n.kids[i+1:])
			n.kids[len(n.kids)-1] = nil
			n.kids = n.kids[:len(n.kids)-1]
		case 1:
			g := c.kids[0]
			g.label = c.label + g.label
			n.kids[i] = g
		}
	}
	return true
}

// prefixesOf calls fn with the value of every key that is a prefix of s,
// shortest first; with rev set, of every key that is a prefix of s read
// backwards (for a tree of reversed keys: every key that is a suffix of s).
// It costs O(len(s)) steps plus the calls.
func (r *radix[V]) prefixesOf(s string, rev bool, fn func(*V)) {
	n := &r.root
	pos := 0
	for pos < len(s) {
		var c *rnode[V]
		if rev {
			_, c = n.child(s[len(s)-1-pos])
		} else {
			_, c = n.child(s[pos])
		}
		if c == nil || len(c.label) > len(s)-pos {
			return
		}
		if rev {
			for j := 0; j < len(c.label); j++ {
				if c.label[j] != s[len(s)-1-pos-j] {
					return
				}
			}
		} else if s[pos:pos+len(c.label)] != c.label {
			return
		}
		pos += len(c.label)
		n = c
		if n.set {
			fn(&n.val)
		}
	}
}

// under calls fn with the value of every key that starts with p, in no
// particular order. It costs O(len(p)) steps plus one per node below.
func (r *radix[V]) under(p string, fn func(*V)) {
	if n := r.find(p); n != nil {
		n.walk(fn)
	}
}

// find returns the highest node whose keys all start with p and that
// holds every such key, or nil if there is none.
func (r *radix[V]) find(p string) *rnode[V] {
	n := &r.root
	for p != "" {
		_, c := n.child(p[0])
		if c == nil {
			return nil
		}
		l := commonPrefix(c.label, p)
		if l == len(p) {
			return c
		}
		if l < len(c.label) {
			return nil
		}
		n, p = c, p[l:]
	}
	return n
}

// count returns the number of keys that start with p, or limit if there
// are more. It costs O(len(p)+limit) steps.
func (r *radix[V]) count(p string, limit int) int {
	n := r.find(p)
	if n == nil {
		return 0
	}
	k := 0
	n.countTo(&k, limit)
	return k
}

func (n *rnode[V]) countTo(k *int, limit int) {
	if *k >= limit {
		return
	}
	if n.set {
		*k++
	}
	for _, c := range n.kids {
		c.countTo(k, limit)
	}
}

// walk calls fn with every value in the subtree of n.
func (n *rnode[V]) walk(fn func(*V)) {
	if n.set {
		fn(&n.val)
	}
	for _, c := range n.kids {
		c.walk(fn)
	}
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// reverse returns s with its bytes in reverse order.
func reverse(s string) string {
	b := make([]byte, len(s))
	for i := range len(s) {
		b[len(s)-1-i] = s[i]
	}
	return string(b)
}
