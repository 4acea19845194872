//go:build windows

package hcs

import (
	"encoding/json"
	"testing"
)

// The mirrors must marshal exactly as hcsshim's types do: HCS reads the JSON.
// (Compiled by GOOS=windows go vet on Linux; runs only on Windows.)
func TestMirrorsMarshalLikeHCSShim(t *testing.T) {
	c := &ContainerConfig{
		SystemType: "Container", Name: "x", Owner: "mxc", VolumePath: `\\?\Volume{1e5bbd1c-5d4e-4f0a-9b0c-6a0b3f6e2d11}`,
		LayerFolderPath: `C:\s`, Layers: []Layer{{ID: "1", Path: `C:\l`}}, ProcessorMaximum: 1875, MemoryMaximumInMB: 2048,
		MappedDirectories: []MappedDir{{HostPath: `D:\w`, ContainerPath: `C:\w`, ReadOnly: true}},
		MappedPipes:       []MappedPipe{{HostPath: `\\.\pipe\a`, ContainerPipeName: "a"}},
		HvPartition:       true, HvRuntime: &HvRuntime{ImagePath: `C:\uvm`}, EndpointList: []string{"e"},
		AssignedDevices: []AssignedDevice{{InterfaceClassGUID: "g"}},
	}
	mine, _ := json.Marshal(c)
	theirs, _ := json.Marshal(c.toHCSShim())
	if string(mine) != string(theirs) {
		t.Errorf("ContainerConfig:\nmirror  %s\nhcsshim %s", mine, theirs)
	}
	p := &ProcessConfig{CommandLine: "cmd", User: "ContainerUser", Environment: map[string]string{"A": "b"}, CreateStdInPipe: true, ConsoleSize: [2]uint{1, 2}}
	mine, _ = json.Marshal(p)
	theirs, _ = json.Marshal(p.toHCSShim())
	if string(mine) != string(theirs) {
		t.Errorf("ProcessConfig:\nmirror  %s\nhcsshim %s", mine, theirs)
	}
	a := ACL{Protocols: "6", Action: ActionAllow, Direction: DirectionOut, RemoteAddresses: "192.0.2.0/24", RemotePorts: "443", RuleType: RuleTypeSwitch, Priority: 2100}
	mine, _ = json.Marshal(a)
	theirs, _ = json.Marshal(a.toHCN())
	if string(mine) != string(theirs) {
		t.Errorf("ACL:\nmirror  %s\nhcn     %s", mine, theirs)
	}
	if aclFromHCN(a.toHCN()) != a {
		t.Errorf("ACL round trip changed it")
	}
}
