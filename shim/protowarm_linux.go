//go:build linux

package shim

import (
	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// warmProto builds protobuf's per-type tables for the messages a shim
// process decodes and encodes for one task, before the first request needs
// them. protobuf-go builds a message type's coders on its first use
// (MessageInfo.initOnce), and in the long-running shim that first use is
// on the task's path: the Create request's decoding, each lifecycle
// event's MarshalAny for containerd, each response: ~7% of that process's
// CPU (perf, `ctr run --rm`), most of it while containerd waits. Started
// in the background when the process starts, it overlaps containerd's
// connection; a request that gets to a type first builds it, and the other
// waits on the same sync.Once, so nothing is built twice.
func warmProto() {
	for _, m := range []proto.Message{
		// ttrpc's envelope, then the task API as the runc code serves it
		&ttrpc.Request{}, &ttrpc.Response{}, &ttrpc.KeyValue{},
		&taskAPI.CreateTaskRequest{}, &taskAPI.CreateTaskResponse{},
		&taskAPI.StartRequest{}, &taskAPI.StartResponse{},
		&taskAPI.WaitRequest{}, &taskAPI.WaitResponse{},
		&taskAPI.DeleteRequest{}, &taskAPI.DeleteResponse{},
		&taskAPI.StateRequest{}, &taskAPI.StateResponse{},
		&taskAPI.ConnectRequest{}, &taskAPI.ConnectResponse{},
		&taskAPI.KillRequest{}, &taskAPI.CloseIORequest{}, &taskAPI.ShutdownRequest{},
		&taskAPI.ExecProcessRequest{}, &taskAPI.PidsRequest{}, &taskAPI.PidsResponse{},
		&types.Mount{}, &types.Envelope{}, &options.Options{},
		&anypb.Any{}, &timestamppb.Timestamp{}, &emptypb.Empty{},
		// what the events publisher sends to containerd
		&eventsapi.ForwardRequest{},
	} {
		_ = proto.Size(m)
	}
	for _, ev := range []any{
		&eventstypes.TaskCreate{}, &eventstypes.TaskStart{}, &eventstypes.TaskExit{},
		&eventstypes.TaskDelete{}, &eventstypes.TaskOOM{}, &eventstypes.TaskIO{},
		&eventstypes.TaskExecAdded{}, &eventstypes.TaskExecStarted{},
		&eventstypes.TaskPaused{}, &eventstypes.TaskResumed{},
	} {
		_, _ = typeurl.MarshalAny(ev)
	}
}
