//go:build windows

package hcs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/Microsoft/hcsshim"
)

// fillLayerIDs sets each layer's ID: the GUID Windows derives from the layer
// folder's name (what hcsshim's wclayer.LayerID computes).
func fillLayerIDs(cfg *ContainerConfig) error {
	for i := range cfg.Layers {
		g, err := hcsshim.NameToGuid(filepath.Base(cfg.Layers[i].Path))
		if err != nil {
			return fmt.Errorf("layer %s: id: %w", cfg.Layers[i].Path, err)
		}
		cfg.Layers[i].ID = g.ToString()
	}
	return nil
}

func scratchInfo(scratch string) (hcsshim.DriverInfo, string) {
	return hcsshim.DriverInfo{HomeDir: filepath.Dir(scratch)}, filepath.Base(scratch)
}

// mountScratch activates the scratch layer, attaches the image layers below
// it and returns its volume path (\\?\Volume{GUID}, no trailing backslash),
// as hcsshim does for process-isolated containers. The scratch VHD is made
// when the bundle's creator did not make one.
func mountScratch(scratch string, parents []string) (vol string, err error) {
	di, id := scratchInfo(scratch)
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return "", fmt.Errorf("scratch folder: %w", err)
	}
	if _, err := os.Stat(filepath.Join(scratch, "sandbox.vhdx")); errors.Is(err, os.ErrNotExist) {
		if err := hcsshim.CreateScratchLayer(di, id, "", parents); err != nil {
			return "", fmt.Errorf("create scratch layer %s: %w", scratch, err)
		}
	}
	if err := hcsshim.ActivateLayer(di, id); err != nil {
		return "", fmt.Errorf("activate scratch layer %s: %w", scratch, err)
	}
	defer func() {
		if err != nil {
			_ = hcsshim.DeactivateLayer(di, id)
		}
	}()
	if err := hcsshim.PrepareLayer(di, id, parents); err != nil {
		return "", fmt.Errorf("prepare scratch layer %s: %w", scratch, err)
	}
	defer func() {
		if err != nil {
			_ = hcsshim.UnprepareLayer(di, id)
		}
	}()
	vol, err = hcsshim.GetLayerMountPath(di, id)
	if err != nil {
		return "", fmt.Errorf("scratch layer %s: volume: %w", scratch, err)
	}
	return strings.TrimSuffix(vol, `\`), nil
}

// unmountScratch undoes mountScratch.
func unmountScratch(scratch string) error {
	di, id := scratchInfo(scratch)
	return errors.Join(hcsshim.UnprepareLayer(di, id), hcsshim.DeactivateLayer(di, id))
}
