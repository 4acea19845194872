//go:build windows

package hcs

import (
	"github.com/Microsoft/hcsshim"
	"github.com/Microsoft/hcsshim/hcn"
)

// The conversions below are written field by field, and leaf types convert
// with a struct conversion (legal only when every field name and type is
// identical): if hcsshim's schema v1 or hcn's ACL settings change, the
// Windows build fails here instead of a setting being lost.

func (c *ContainerConfig) toHCSShim() *hcsshim.ContainerConfig {
	out := &hcsshim.ContainerConfig{
		SystemType:                  c.SystemType,
		Name:                        c.Name,
		Owner:                       c.Owner,
		VolumePath:                  c.VolumePath,
		IgnoreFlushesDuringBoot:     c.IgnoreFlushesDuringBoot,
		LayerFolderPath:             c.LayerFolderPath,
		Credentials:                 c.Credentials,
		ProcessorCount:              c.ProcessorCount,
		ProcessorWeight:             c.ProcessorWeight,
		ProcessorMaximum:            c.ProcessorMaximum,
		StorageIOPSMaximum:          c.StorageIOPSMaximum,
		StorageBandwidthMaximum:     c.StorageBandwidthMaximum,
		StorageSandboxSize:          c.StorageSandboxSize,
		MemoryMaximumInMB:           c.MemoryMaximumInMB,
		HostName:                    c.HostName,
		HvPartition:                 c.HvPartition,
		NetworkSharedContainerName:  c.NetworkSharedContainerName,
		EndpointList:                c.EndpointList,
		Servicing:                   c.Servicing,
		AllowUnqualifiedDNSQuery:    c.AllowUnqualifiedDNSQuery,
		DNSSearchList:               c.DNSSearchList,
		ContainerType:               c.ContainerType,
		TerminateOnLastHandleClosed: c.TerminateOnLastHandleClosed,
	}
	for _, l := range c.Layers {
		out.Layers = append(out.Layers, hcsshim.Layer(l))
	}
	for _, m := range c.MappedDirectories {
		out.MappedDirectories = append(out.MappedDirectories, hcsshim.MappedDir(m))
	}
	for _, p := range c.MappedPipes {
		out.MappedPipes = append(out.MappedPipes, hcsshim.MappedPipe(p))
	}
	if c.HvRuntime != nil {
		hv := hcsshim.HvRuntime(*c.HvRuntime)
		out.HvRuntime = &hv
	}
	for _, d := range c.MappedVirtualDisks {
		out.MappedVirtualDisks = append(out.MappedVirtualDisks, hcsshim.MappedVirtualDisk(d))
	}
	for _, d := range c.AssignedDevices {
		out.AssignedDevices = append(out.AssignedDevices, hcsshim.AssignedDevice(d))
	}
	return out
}

func (p *ProcessConfig) toHCSShim() *hcsshim.ProcessConfig {
	return &hcsshim.ProcessConfig{
		ApplicationName:   p.ApplicationName,
		CommandLine:       p.CommandLine,
		CommandArgs:       p.CommandArgs,
		User:              p.User,
		WorkingDirectory:  p.WorkingDirectory,
		Environment:       p.Environment,
		EmulateConsole:    p.EmulateConsole,
		CreateStdInPipe:   p.CreateStdInPipe,
		CreateStdOutPipe:  p.CreateStdOutPipe,
		CreateStdErrPipe:  p.CreateStdErrPipe,
		ConsoleSize:       p.ConsoleSize,
		CreateInUtilityVm: p.CreateInUtilityVm,
	}
}

func (a ACL) toHCN() hcn.AclPolicySetting {
	return hcn.AclPolicySetting{
		Protocols:       a.Protocols,
		Action:          hcn.ActionType(a.Action),
		Direction:       hcn.DirectionType(a.Direction),
		LocalAddresses:  a.LocalAddresses,
		RemoteAddresses: a.RemoteAddresses,
		LocalPorts:      a.LocalPorts,
		RemotePorts:     a.RemotePorts,
		RuleType:        hcn.RuleType(a.RuleType),
		Priority:        a.Priority,
	}
}

func aclFromHCN(s hcn.AclPolicySetting) ACL {
	return ACL{
		Protocols:       s.Protocols,
		Action:          string(s.Action),
		Direction:       string(s.Direction),
		LocalAddresses:  s.LocalAddresses,
		RemoteAddresses: s.RemoteAddresses,
		LocalPorts:      s.LocalPorts,
		RemotePorts:     s.RemotePorts,
		RuleType:        string(s.RuleType),
		Priority:        s.Priority,
	}
}
