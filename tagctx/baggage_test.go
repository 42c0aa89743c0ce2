package tagctx

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/baggage"
)

func TestExtract(t *testing.T) {
	many := strings.Repeat("k=v,", 10000) + "x-tag=a"
	tests := []struct {
		name      string
		tags, bag []string
		want      string
		wantFound bool
		wantErr   string
	}{
		{name: "nothing"},
		{name: "header", tags: []string{"feature-x"}, want: "feature-x", wantFound: true},
		{name: "header upper case", tags: []string{"FEATURE-X"}, want: "feature-x", wantFound: true},
		{name: "header beats baggage", tags: []string{"a"}, bag: []string{"x-tag=b"}, want: "a", wantFound: true},
		{name: "same header twice", tags: []string{"a", "a"}, want: "a", wantFound: true},
		{name: "conflicting headers", tags: []string{"a", "b"}, wantFound: true, wantErr: `conflicting tag header values "a" and "b"`},
		{name: "invalid header", tags: []string{"a_b"}, wantFound: true, wantErr: `invalid tag "a_b"`},
		{name: "baggage only member", bag: []string{"x-tag=b"}, want: "b", wantFound: true},
		{name: "baggage among members", bag: []string{"userId=1, x-tag = b ;prop=1 ,z=2"}, want: "b", wantFound: true},
		{name: "baggage second header", bag: []string{"k=v", "x-tag=c"}, want: "c", wantFound: true},
		{name: "baggage percent-encoded", bag: []string{"x-tag=feature%2Dx"}, want: "feature-x", wantFound: true},
		{name: "baggage bad escape", bag: []string{"x-tag=%zz"}, wantFound: true, wantErr: "invalid URL escape"},
		{name: "baggage key is exact", bag: []string{"x-tagger=a,xx-tag=b"}},
		{name: "baggage malformed members skipped", bag: []string{"garbage,,;=,x-tag=d"}, want: "d", wantFound: true},
		{name: "baggage invalid value", bag: []string{"x-tag=no_pe"}, wantFound: true, wantErr: `invalid tag "no_pe"`},
		{name: "header over limit", tags: []string{strings.Repeat("a", 1<<20)}, wantFound: true, wantErr: "1048576 bytes, limit 8192"},
		{name: "empty header is the untagged mark", tags: []string{""}, bag: []string{"x-tag=b"}, wantFound: true},
		{name: "untagged mark twice", tags: []string{"", ""}, wantFound: true},
		{name: "untagged mark and a tag conflict", tags: []string{"", "evil"}, wantFound: true, wantErr: "conflicting"},
		// Finding 4: the tag's limits are the tag header's; large baggage
		// beside a tag header is not read at all.
		{name: "header beside 8190 bytes of baggage", tags: []string{"a"}, bag: []string{strings.Repeat("b", 8190)}, want: "a", wantFound: true},
		{name: "header beside 1 MiB of baggage", tags: []string{"a"}, bag: []string{strings.Repeat("b", 1<<20)}, want: "a", wantFound: true},
		{name: "65 members W3C allows", bag: []string{strings.Repeat("k=v,", 64) + "x-tag=a"}, want: "a", wantFound: true},
		{name: "180 members W3C allows", bag: []string{strings.Repeat("k=v,", 179) + "x-tag=a"}, want: "a", wantFound: true},
		{name: "too many members", bag: []string{strings.Repeat("k=v,", 180) + "x-tag=a"}, wantErr: "181 baggage members, limit 180"},
		{name: "baggage over bytes", bag: []string{"x-tag=a," + strings.Repeat("b", 8192)}, wantErr: "limit 8192"},
		{name: "baggage over bytes in two values", bag: []string{"x-tag=a," + strings.Repeat("b", 4090), strings.Repeat("b", 4096)}, wantErr: "8195 bytes, limit 8192"},
		{name: "10000 members", bag: []string{many[:MaxBaggageBytes-8] + "x-tag=a"}, wantErr: "baggage members, limit 180"},
		// Finding 2: OpenTelemetry trims Unicode white space around keys.
		{name: "NBSP before =", bag: []string{"x-tag\u00a0=evil"}, want: "evil", wantFound: true},
		{name: "NBSP around value", bag: []string{"x-tag=\u00a0evil\u00a0"}, want: "evil", wantFound: true},
		{name: "duplicate members agree", bag: []string{"x-tag=a,k=v,x-tag=a"}, want: "a", wantFound: true},
		{name: "duplicate members differ", bag: []string{"x-tag=a", "x-tag=b"}, wantFound: true, wantErr: "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found, err := Extract(tt.tags, tt.bag, DefaultBaggageKey)
			if got.String() != tt.want || found != tt.wantFound {
				t.Errorf("Extract = %q, found %v; want %q, %v", got, found, tt.want, tt.wantFound)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			// Every refusal is classifiable: over the limits, or invalid.
			if err != nil && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrInvalidTag) {
				t.Errorf("error %v matches neither ErrLimit nor ErrInvalidTag", err)
			}
			if strings.Contains(tt.wantErr, "limit") && !errors.Is(err, ErrLimit) {
				t.Errorf("errors.Is(%v, ErrLimit) = false", err)
			}
		})
	}
}

func TestExtractDoesNotAllocate(t *testing.T) {
	bag := []string{"userId=1,x-tag=feature-x,z=2"}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = Extract(nil, bag, DefaultBaggageKey) }); n != 0 {
		t.Fatalf("Extract allocates %v times", n)
	}
}

func TestMergeBaggage(t *testing.T) {
	a := MustParse("a")
	tests := []struct {
		name, header string
		tag          Tag
		want         string
	}{
		{name: "empty", tag: a, want: "x-tag=a"},
		{name: "append", header: "k=v", tag: a, want: "k=v,x-tag=a"},
		{name: "replace keeps order of others", header: "k=v, x-tag=b;p=1 ,z=1", tag: a, want: "k=v,z=1,x-tag=a"},
		{name: "remove on zero", header: "k=v,x-tag=b", want: "k=v"},
		{name: "remove only member", header: "x-tag=b"},
		{name: "zero and absent is untouched", header: "k=v", want: "k=v"},
		{name: "similar key kept", header: "x-tagger=1", tag: a, want: "x-tagger=1,x-tag=a"},
		{name: "NBSP key is the member", header: "k=v,x-tag\u00a0=evil", want: "k=v"},
		// Finding 4: never write what a conforming reader truncates.
		{name: "64 others: the last is dropped for the tag", header: strings.TrimSuffix(strings.Repeat("k=v,", 63), ",") + ",last=1", tag: a,
			want: strings.TrimSuffix(strings.Repeat("k=v,", 63), ",") + ",x-tag=a"},
		{name: "63 others fit", header: strings.TrimSuffix(strings.Repeat("k=v,", 63), ","), tag: a,
			want: strings.Repeat("k=v,", 63) + "x-tag=a"},
		{name: "8190 bytes: the member that does not fit is dropped", header: "k=v," + strings.Repeat("b", 8186), tag: a, want: "k=v,x-tag=a"},
		{name: "over 8192 bytes: a reader ignores it all", header: strings.Repeat("b", 9000), tag: a, want: "x-tag=a"},
		{name: "over 8192 bytes, zero tag", header: strings.Repeat("b", 9000) + ",x-tag=evil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MergeBaggage(tt.header, DefaultBaggageKey, tt.tag); got != tt.want {
				t.Errorf("MergeBaggage(%q, %q) = %q, want %q", tt.header, tt.tag, got, tt.want)
			}
		})
	}
}

// TestMergeBaggageConformingReader checks the written baggage with
// OpenTelemetry's own parser: the tag is always among what it reads.
func TestMergeBaggageConformingReader(t *testing.T) {
	a := MustParse("feature-x")
	for _, n := range []int{0, 1, 63, 64, 65, 180, 500} {
		for _, width := range []int{1, 40, 200} {
			var parts []string
			for i := range n {
				parts = append(parts, fmt.Sprintf("k%d=%s", i, strings.Repeat("v", width)))
			}
			got := MergeBaggage(strings.Join(parts, ","), DefaultBaggageKey, a)
			b, err := baggage.Parse(got)
			if err != nil {
				t.Errorf("%d members of %d bytes: OTel rejects what MergeBaggage wrote: %v", n, width, err)
			}
			if v := b.Member(DefaultBaggageKey).Value(); v != "feature-x" {
				t.Errorf("%d members of %d bytes: OTel reads x-tag %q", n, width, v)
			}
		}
	}
}

func TestQuote(t *testing.T) {
	if got := Quote("a\nb"); got != `"a\nb"` {
		t.Errorf("Quote short = %s", got)
	}
	got := Quote(strings.Repeat("x", 1<<19))
	if len(got) > MaxQuoted+32 || !strings.Contains(got, "524288 bytes") {
		t.Errorf("Quote long = %s", got)
	}
}

func TestOtelBaggageRoundTrip(t *testing.T) {
	other, _ := baggage.NewMemberRaw("user", "42")
	b, _ := baggage.New(other)
	b, err := ToBaggage(b, DefaultBaggageKey, MustParse("feature-x"))
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := FromBaggage(b, DefaultBaggageKey)
	if err != nil || !found || got.String() != "feature-x" {
		t.Fatalf("FromBaggage = %q, %v, %v", got, found, err)
	}
	if b.Member("user").Value() != "42" {
		t.Fatal("other member lost")
	}
	b, _ = ToBaggage(b, DefaultBaggageKey, Tag{})
	if _, found, _ := FromBaggage(b, DefaultBaggageKey); found || b.Len() != 1 {
		t.Fatalf("member not removed: %v", b)
	}
}

func TestMemberCache(t *testing.T) {
	// More distinct tags than slots: every answer stays right while
	// entries are evicted, and the table cannot grow.
	for i := range 3 * memberSlots {
		tag := MustParse(fmt.Sprintf("t%d", i))
		if got, want := member(DefaultBaggageKey, tag), "x-tag="+tag.String(); got != want {
			t.Fatalf("member = %q, want %q", got, want)
		}
	}
	hot := MustParse("feature-x")
	member(DefaultBaggageKey, hot)
	if n := testing.AllocsPerRun(100, func() { member(DefaultBaggageKey, hot) }); n != 0 {
		t.Fatalf("cached member allocates %v times", n)
	}
	if got := member("other", MustParse("a")); got != "other=a" {
		t.Fatalf("non-default key: %q", got)
	}
}

func TestMemberCacheConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				tag := MustParse(fmt.Sprintf("t%d", (i*7+g)%(2*memberSlots)))
				if got, want := member(DefaultBaggageKey, tag), "x-tag="+tag.String(); got != want {
					t.Errorf("member = %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzMergeBaggage: whatever baggage a request carried, what MergeBaggage
// writes is within the limits a conforming reader accepts whole, that
// reader (OpenTelemetry) and Extract read exactly the tag from it, and a
// zero Tag leaves no member OpenTelemetry would read as the tag.
func FuzzMergeBaggage(f *testing.F) {
	f.Add("", "feature-x")
	f.Add("k=v,x-tag=old;p=1", "")
	f.Add(strings.Repeat("k=v,", 70), "a")
	f.Add("x-tag\u00a0=evil, x-tag =evil2", "")
	f.Add(strings.Repeat("b", 8190), "a")
	f.Fuzz(func(t *testing.T, header, tag string) {
		tg, err := Parse(tag)
		if err != nil {
			tg = Tag{}
		}
		got := MergeBaggage(header, DefaultBaggageKey, tg)
		// Baggage without the member is not ours to rewrite when
		// untagged; with a tag, the written value is within the limits.
		if !tg.IsZero() && (len(got) > MaxBaggageBytes || strings.Count(got, ",")+1 > MaxWrittenMembers) {
			t.Fatalf("wrote %d bytes, %d members", len(got), strings.Count(got, ",")+1)
		}
		b, _ := baggage.Parse(got)
		if v := b.Member(DefaultBaggageKey).Value(); v != tg.String() {
			t.Fatalf("OpenTelemetry reads x-tag %q from %q, want %q", v, got, tg)
		}
		if !tg.IsZero() {
			if et, found, err := Extract(nil, []string{got}, DefaultBaggageKey); err != nil || !found || et != tg {
				t.Fatalf("Extract reads %q, %v, %v from %q, want %q", et, found, err, got, tg)
			}
		} else if has, _ := HasMember([]string{got}, DefaultBaggageKey); has {
			t.Fatalf("zero tag left a member in %q", got)
		}
	})
}
