package tagctx

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

type otherKey struct{}

func TestContextDecision(t *testing.T) {
	fx := MustParse("feature-x")
	node := MustParse("node-lane")
	bg := context.Background()
	tests := []struct {
		name          string
		ctx           context.Context
		node          Tag
		wantTag       Tag
		wantDecided   bool
		wantEffective Tag
	}{
		{name: "no decision, stable node", ctx: bg},
		{name: "no decision, tagged node", ctx: bg, node: node, wantEffective: node},
		{name: "tagged", ctx: With(bg, fx), node: node, wantTag: fx, wantDecided: true, wantEffective: fx},
		{name: "explicit untagged beats node tag", ctx: WithUntagged(bg), node: node, wantDecided: true},
		{name: "inner decision wins", ctx: WithUntagged(With(bg, fx)), wantDecided: true},
		{name: "unrelated values on top", ctx: context.WithValue(With(bg, fx), otherKey{}, 1), wantTag: fx, wantDecided: true, wantEffective: fx},
		{name: "canceled child keeps tag", ctx: canceled(With(bg, fx)), wantTag: fx, wantDecided: true, wantEffective: fx},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withNode(t, tt.node)
			tag, decided := Lookup(tt.ctx)
			if tag != tt.wantTag || decided != tt.wantDecided {
				t.Errorf("Lookup = %q, %v; want %q, %v", tag, decided, tt.wantTag, tt.wantDecided)
			}
			if got := From(tt.ctx); got != tt.wantTag {
				t.Errorf("From = %q, want %q", got, tt.wantTag)
			}
			if got := Effective(tt.ctx); got != tt.wantEffective {
				t.Errorf("Effective = %q, want %q", got, tt.wantEffective)
			}
		})
	}
}

func canceled(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	return ctx
}

func TestContextKeepsParentBehaviour(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "v"))
	ctx := With(parent, MustParse("a"))
	if ctx.Value(otherKey{}) != "v" {
		t.Error("parent value lost")
	}
	cancel()
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("Err = %v, want canceled", ctx.Err())
	}
	if s := ctx.(interface{ String() string }).String(); !strings.Contains(s, `WithTag("a")`) {
		t.Errorf("String() = %q", s)
	}
}

func TestNodeFromEnv(t *testing.T) {
	tests := []struct {
		name, env, want, wantErr string
	}{
		{name: "unset is stable", env: ""},
		{name: "valid", env: "feature-x", want: "feature-x"},
		{name: "upper case", env: "FEATURE-X", want: "feature-x"},
		{name: "invalid", env: "feature_x", wantErr: `tagctx: TAGLANE_TAG: tagctx: invalid tag "feature_x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvNodeTag, tt.env)
			got, err := NodeFromEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("NodeFromEnv = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestInvalidNodeTagStops runs this test binary again with a bad
// TAGLANE_TAG: the process starts (so main could check NodeErr), and the
// first Node call stops it with one readable line and exit status 2, not a
// panic with a stack.
func TestInvalidNodeTagStops(t *testing.T) {
	if os.Getenv("TAGCTX_CHILD") == "1" {
		if NodeErr() == nil {
			t.Fatal("NodeErr is nil with TAGLANE_TAG=Bad_Tag")
		}
		_ = Node()
		t.Fatal("Node returned with an invalid TAGLANE_TAG")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInvalidNodeTagStops$")
	cmd.Env = append(os.Environ(), "TAGCTX_CHILD=1", EnvNodeTag+"=Bad_Tag")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("child ended with %v, want exit status 2; stderr:\n%s", err, stderr.String())
	}
	want := `tagctx: TAGLANE_TAG: tagctx: invalid tag "Bad_Tag": character '_' at byte 3 is not in [a-z0-9-] (fix or unset TAGLANE_TAG, or call tagctx.SetNode before serving)` + "\n"
	if got := stderr.String(); got != want {
		t.Fatalf("stderr\n got %q\nwant %q", got, want)
	}
}

// TestInvalidNodeTagHandledByProgram: a program that checks NodeErr and
// sets the node tag itself runs on.
func TestInvalidNodeTagHandledByProgram(t *testing.T) {
	if os.Getenv("TAGCTX_CHILD") == "1" {
		if err := NodeErr(); err == nil || !errors.Is(err, ErrInvalidTag) {
			t.Fatalf("NodeErr = %v, want an ErrInvalidTag", err)
		}
		SetNode(Tag{}) // the program decided: run as stable
		if NodeErr() != nil || !Node().IsZero() {
			t.Fatalf("after SetNode: NodeErr %v, Node %q", NodeErr(), Node())
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInvalidNodeTagHandledByProgram$")
	cmd.Env = append(os.Environ(), "TAGCTX_CHILD=1", EnvNodeTag+"=-bad")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestNodeFromEnvAtStartUp(t *testing.T) {
	if os.Getenv("TAGCTX_CHILD") == "1" {
		if Node().String() != "lane-7" {
			t.Fatalf("Node() = %q, want lane-7", Node())
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNodeFromEnvAtStartUp$")
	cmd.Env = append(os.Environ(), "TAGCTX_CHILD=1", EnvNodeTag+"=Lane-7")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
