package bqsink

import (
	"errors"

	"google.golang.org/protobuf/proto"
)

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

func protoMarshal(m proto.Message) ([]byte, error) { return proto.Marshal(m) }
