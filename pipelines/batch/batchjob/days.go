package batchjob

import (
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/railyard/railyard/schemas"
)

func init() {
	register.DoFn2x0[schemas.Event, func(schemas.Event)](&keepEventDaysFn{})
	register.DoFn2x0[schemas.Session, func(schemas.Session)](&keepSessionDaysFn{})
	register.Emitter1[schemas.Event]()
	register.Emitter1[schemas.Session]()
}

// keepDays keeps the elements of a PCollection<schemas.Event> (by event
// time) or PCollection<schemas.Session> (by session start) whose UTC day
// is one of days.
func keepDays(s beam.Scope, col beam.PCollection, days []string) beam.PCollection {
	switch t := col.Type().Type(); t {
	case reflect.TypeFor[schemas.Event]():
		return beam.ParDo(s, &keepEventDaysFn{Days: days}, col)
	case reflect.TypeFor[schemas.Session]():
		return beam.ParDo(s, &keepSessionDaysFn{Days: days}, col)
	default:
		panic(fmt.Sprintf("batchjob.keepDays: no day for %v", t))
	}
}

func inDays(micros int64, days []string) bool {
	_, found := slices.BinarySearch(days, time.UnixMicro(micros).UTC().Format(schemas.DayLayout))
	return found
}

type keepEventDaysFn struct{ Days []string }

func (fn *keepEventDaysFn) ProcessElement(ev schemas.Event, emit func(schemas.Event)) {
	if inDays(ev.EventTime, fn.Days) {
		emit(ev)
	}
}

type keepSessionDaysFn struct{ Days []string }

func (fn *keepSessionDaysFn) ProcessElement(ses schemas.Session, emit func(schemas.Session)) {
	if inDays(ses.SessionStart, fn.Days) {
		emit(ses)
	}
}
