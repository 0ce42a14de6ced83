//go:build !linux

package qemucmd

func hostIsCDROM(string) bool { return false }
