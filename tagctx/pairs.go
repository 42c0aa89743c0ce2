package tagctx

import (
	"net/http"
	"sync/atomic"
	"unsafe"
)

// Inject writes two header values per tagged call, each a []string of one
// element. One allocation per call for their backing array was about 30
// of an inject's 115 ns (the allocation and the collector's share of it),
// so the arrays come from slabs of pairSlabLen strings instead, as
// net/textproto's header reader cuts a message's values from one array.
//
// Every pair is handed out once: a caller that writes into a header value
// in place writes its own element, and the full slice expressions keep an
// append from reaching a neighbour. A header kept alive keeps its slab
// alive, at most pairSlabLen strings: only the fast path takes pairs, and
// its strings are a tag and a cached member, both short and shared anyway.
//
// Slabs are sharded by the address of the header map, so injects on
// different requests in parallel seldom touch the same counter.
const (
	pairSlabLen = 30 // strings per slab: 15 pairs and the counter fill a 512-byte size class
	pairShards  = 16
)

type pairSlab struct {
	vals [pairSlabLen]string
	next atomic.Int32 // index of the next free pair
}

type pairShard struct {
	slab atomic.Pointer[pairSlab]
	_    [64 - 8]byte // one cache line each: no false sharing between shards
}

var pairShardsOf [pairShards]pairShard

// newPair returns a fresh []string of length 2 and capacity 2 that no one
// else holds, for the values of header map h.
func newPair(h http.Header) []string {
	// A map value is a pointer to the map's runtime header: its address
	// names the request. reflect.Value.Pointer reads the same word at 30
	// instructions, a twentieth of the inject.
	addr := uint64(*(*uintptr)(unsafe.Pointer(&h)))
	sh := &pairShardsOf[(addr*0x9e3779b97f4a7c15)>>(64-4)] // pairShards == 1<<4
	for {
		s := sh.slab.Load()
		if s != nil {
			if i := s.next.Add(2) - 2; i+2 <= pairSlabLen {
				return s.vals[i : i+2 : i+2]
			}
		}
		// Exhausted (or none yet): start a new slab with its first pair
		// taken. A lost race wastes the new slab, never a pair.
		fresh := new(pairSlab)
		fresh.next.Store(2)
		if sh.slab.CompareAndSwap(s, fresh) {
			return fresh.vals[0:2:2]
		}
	}
}
