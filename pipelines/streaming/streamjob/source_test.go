package streamjob

import (
	"slices"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/railyard/railyard/schemas"
)

// stepNames lists the top-level step names of the streaming job built on
// the default runner, reading from source when it is not nil.
func stepNames(t *testing.T, source Source) []string {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	if err := build(s, validConfig(), 0, source); err != nil {
		t.Fatal(err)
	}
	edges, _, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range edges {
		scope := e.Scope()
		for scope.Parent != nil && scope.Parent.Parent != nil {
			scope = scope.Parent
		}
		if !slices.Contains(names, scope.Label) {
			names = append(names, scope.Label)
		}
	}
	return names
}

func TestBuildFromSource(t *testing.T) {
	fromPubSub := stepNames(t, nil)
	for _, step := range []string{"ReadPubSub", "AckDurable", "AckMessages"} {
		if !slices.Contains(fromPubSub, step) {
			t.Errorf("the job from the subscription has no step %s: %v", step, fromPubSub)
		}
	}
	read := 0
	fromSource := stepNames(t, func(s beam.Scope) beam.PCollection {
		read++
		return beam.Create(s, schemas.Record{Data: []byte("{}")})
	})
	if read != 1 {
		t.Errorf("the source was asked for its records %d times, want once", read)
	}
	if !slices.Contains(fromSource, "ReadSource") {
		t.Errorf("the job from a Source has no step ReadSource: %v", fromSource)
	}
	for _, name := range fromSource {
		if strings.HasPrefix(name, "ReadPubSub") || strings.HasPrefix(name, "Ack") {
			t.Errorf("the job from a Source has the step %s: it must neither read the subscription nor acknowledge", name)
		}
	}
	// Every other step is the same.
	same := func(names []string) []string {
		return slices.DeleteFunc(slices.Clone(names), func(n string) bool {
			return n == "ReadSource" || n == "ReadPubSub" || strings.HasPrefix(n, "Ack")
		})
	}
	if a, b := same(fromPubSub), same(fromSource); !slices.Equal(a, b) {
		t.Errorf("the steps other than the read and the acknowledgement differ:\nfrom the subscription %v\nfrom a Source        %v", a, b)
	}
}
