package snapshot

import (
	"sort"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// tree is one domain's snapshots. Parent links are the definitions'
// <parent> names; children are found from them (domains have few
// snapshots, and a derived index cannot go stale).
type tree struct {
	snaps   map[string]*libvirtxml.DomainSnapshot
	current string
}

func newTree() *tree { return &tree{snaps: map[string]*libvirtxml.DomainSnapshot{}} }

// children lists the direct children of name ("" lists the roots), by name.
func (t *tree) children(name string) []string {
	var out []string
	for n, def := range t.snaps {
		p := ParentName(def)
		if _, ok := t.snaps[p]; !ok {
			p = "" // a parent that is gone makes a root
		}
		if p == name {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// descendants lists everything under name, parents before their children.
func (t *tree) descendants(name string) []string {
	var out []string
	var walk func(string)
	walk = func(n string) {
		for _, c := range t.children(n) {
			out = append(out, c)
			walk(c)
		}
	}
	walk(name)
	return out
}

// Filter flags of the list calls (virDomainSnapshotListFlags).
const (
	listRootsOrDescendants = uint32(libvirt.DomainSnapshotListRoots)
	listLeaves             = uint32(libvirt.DomainSnapshotListLeaves)
	listNoLeaves           = uint32(libvirt.DomainSnapshotListNoLeaves)
	listMetadata           = uint32(libvirt.DomainSnapshotListMetadata)
	listNoMetadata         = uint32(libvirt.DomainSnapshotListNoMetadata)
	listInactive           = uint32(libvirt.DomainSnapshotListInactive)
	listActive             = uint32(libvirt.DomainSnapshotListActive)
	listDiskOnly           = uint32(libvirt.DomainSnapshotListDiskOnly)
	listInternal           = uint32(libvirt.DomainSnapshotListInternal)
	listExternal           = uint32(libvirt.DomainSnapshotListExternal)
	listTopological        = uint32(libvirt.DomainSnapshotListTopological)

	filtersStatus   = listInactive | listActive | listDiskOnly
	filtersLocation = listInternal | listExternal
	filtersLeaves   = listLeaves | listNoLeaves
	filtersMetadata = listMetadata | listNoMetadata

	// ListFlagsAll are the flags the list calls accept.
	ListFlagsAll = listRootsOrDescendants | listTopological | filtersStatus | filtersLocation | filtersLeaves | filtersMetadata
)

// names is virDomainSnapshotObjListGetNames: from == "" lists the whole
// domain (only its roots with VIR_DOMAIN_SNAPSHOT_LIST_ROOTS), otherwise
// from's children (all its descendants with ..._LIST_DESCENDANTS). Each
// filter group of two or three flags filters only when some, not all,
// of its flags are given. The result is sorted by name, or parents
// first with ..._LIST_TOPOLOGICAL.
func (t *tree) names(from string, flags uint32) []string {
	// Every snapshot has metadata: NO_METADATA alone matches none.
	if flags&filtersMetadata == listNoMetadata {
		return []string{}
	}
	if flags&filtersStatus == filtersStatus {
		flags &^= filtersStatus
	}
	if flags&filtersLocation == filtersLocation {
		flags &^= filtersLocation
	}
	if flags&filtersLeaves == filtersLeaves {
		flags &^= filtersLeaves
	}
	var cands []string
	switch {
	case from == "" && flags&listRootsOrDescendants != 0:
		cands = t.children("")
	case from == "":
		cands = t.descendants("")
	case flags&listRootsOrDescendants != 0:
		cands = t.descendants(from)
	default:
		cands = t.children(from)
	}
	out := []string{}
	for _, n := range cands {
		if t.matches(n, flags) {
			out = append(out, n)
		}
	}
	if flags&listTopological == 0 {
		sort.Strings(out)
	}
	return out
}

// matches is virDomainSnapshotFilter plus the leaf filter.
func (t *tree) matches(name string, flags uint32) bool {
	def := t.snaps[name]
	if flags&filtersLeaves != 0 {
		leaf := len(t.children(name)) == 0
		if flags&listLeaves != 0 && !leaf || flags&listNoLeaves != 0 && leaf {
			return false
		}
	}
	if flags&filtersStatus != 0 {
		switch def.State {
		case StateShutoff:
			if flags&listInactive == 0 {
				return false
			}
		case StateDiskSnapshot:
			if flags&listDiskOnly == 0 {
				return false
			}
		default:
			if flags&listActive == 0 {
				return false
			}
		}
	}
	ext := IsExternal(def)
	if flags&listInternal != 0 && ext || flags&listExternal != 0 && !ext {
		return false
	}
	return true
}
