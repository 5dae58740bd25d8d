package route

import "slices"

// radix is a path-compressed byte trie from string keys to values. The
// zero value is an empty tree. Keys are compared byte by byte; a tree of
// reversed keys serves suffix queries (see prefixesOf's rev).
type radix[V any] struct {
	root rnode[V]
}

// rnode is one node: the edge label leading to it, its children sorted by
// the first byte of their labels, and a value if a key ends here.
type rnode[V any] struct {
	label  string
	kids   []edge[V]
	parent *rnode[V] // nil for the root
	val    V
	set    bool
	keys   int // keys in its subtree, its own included
}

// edge is a child and the first byte of its label, kept beside the
// pointer so that a search reads one array and no child.
type edge[V any] struct {
	c byte
	n *rnode[V]
}

// child returns the index of the child whose label starts with c, and the
// child, or the index where such a child would go and nil.
func (n *rnode[V]) child(c byte) (int, *rnode[V]) {
	kids := n.kids
	lo, hi := 0, len(kids)
	if hi > 8 {
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if kids[m].c < c {
				lo = m + 1
			} else {
				hi = m
			}
		}
	} else {
		for lo < hi && kids[lo].c < c {
			lo++
		}
	}
	if lo < len(kids) && kids[lo].c == c {
		return lo, kids[lo].n
	}
	return lo, nil
}

// kid returns the child whose label starts with c, or nil.
func (n *rnode[V]) kid(c byte) *rnode[V] {
	_, k := n.child(c)
	return k
}

// slot returns the value stored at key, adding key (with a zero value) if
// it is absent. key must not be empty.
func (r *radix[V]) slot(key string) *V { return &r.node(key).val }

// node returns the node of key, adding key (with a zero value) if it is
// absent. key must not be empty. The node stays the node of key until key
// is deleted.
func (r *radix[V]) node(key string) *rnode[V] {
	n := &r.root
	for {
		if key == "" {
			if !n.set {
				n.set = true
				n.counted(1)
			}
			return n
		}
		i, c := n.child(key[0])
		if c == nil {
			c = &rnode[V]{label: key, set: true, parent: n}
			n.kids = slices.Insert(n.kids, i, edge[V]{key[0], c})
			c.counted(1)
			return c
		}
		l := commonPrefix(c.label, key)
		if l < len(c.label) {
			mid := &rnode[V]{label: c.label[:l], kids: []edge[V]{{c.label[l], c}}, parent: n, keys: c.keys}
			c.label, c.parent = c.label[l:], mid
			n.kids[i].n = mid
			c = mid
		}
		n, key = c, key[l:]
	}
}

// get returns the value stored at key, or nil.
func (r *radix[V]) get(key string) *V {
	if n := r.exact(key); n != nil {
		return &n.val
	}
	return nil
}

// del removes key and reports whether it was present.
func (r *radix[V]) del(key string) bool {
	n := r.exact(key)
	if n != nil {
		r.delNode(n)
	}
	return n != nil
}

// exact returns the node holding key, or nil.
func (r *radix[V]) exact(key string) *rnode[V] {
	n := &r.root
	for key != "" {
		c := n.kid(key[0])
		if c == nil || len(c.label) > len(key) || key[:len(c.label)] != c.label {
			return nil
		}
		n, key = c, key[len(c.label):]
	}
	if !n.set {
		return nil
	}
	return n
}

// delNode removes the key of n, a node returned by node, in O(1) steps
// plus the length of one label.
func (r *radix[V]) delNode(n *rnode[V]) {
	var zero V
	n.set, n.val = false, zero
	n.counted(-1)
	for n != &r.root && !n.set && len(n.kids) < 2 {
		p := n.parent
		i, _ := p.child(n.label[0])
		if len(n.kids) == 1 {
			// Merge n into its only child.
			g := n.kids[0].n
			g.label, g.parent = n.label+g.label, p
			p.kids[i].n = g
			n.parent, n.kids = nil, nil
			return
		}
		p.kids = slices.Delete(p.kids, i, i+1)
		n.parent = nil
		n = p // p may now be a valueless node with one child
	}
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
			c = n.kid(s[len(s)-1-pos])
		} else {
			c = n.kid(s[pos])
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
		c := n.kid(p[0])
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

// count returns the number of keys that start with p. It costs
// O(len(p)) steps.
func (r *radix[V]) count(p string) int {
	if n := r.find(p); n != nil {
		return n.keys
	}
	return 0
}

// counted adds d to the key counts of n and of the nodes above it, one
// step per node: a tree's depth is at most the length of its longest key.
func (n *rnode[V]) counted(d int) {
	for ; n != nil; n = n.parent {
		n.keys += d
	}
}

// walk calls fn with every value in the subtree of n.
func (n *rnode[V]) walk(fn func(*V)) {
	if n.set {
		fn(&n.val)
	}
	for _, c := range n.kids {
		c.n.walk(fn)
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
