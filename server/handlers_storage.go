package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
	"github.com/govirtd/govirtd/driver"
)

// REMOTE_STORAGE_POOL_LIST_MAX and REMOTE_STORAGE_VOL_LIST_MAX.
const (
	maxStoragePoolList = 16384
	maxStorageVolList  = 16384
)

// registerStorageHandlers serves the storage pool and volume procedures
// from the storage driver (driver/storage): thin shims that unpack, call
// the driver and pack. Streams and events are in handlers_storage_stream.go.
func registerStorageHandlers(t *Table, st driver.Storage) {
	registerStoragePoolHandlers(t, st)
	registerStorageVolHandlers(t, st)
	registerStorageStreamHandlers(t, st)
	registerStoragePoolEventHandlers(t)
}

func registerStoragePoolHandlers(t *Table, st driver.Storage) {
	t.ConnectListAllStoragePools(func(c *Call, a *libvirt.ConnectListAllStoragePoolsArgs) (*libvirt.ConnectListAllStoragePoolsRet, error) {
		pools, err := st.ListAllStoragePools(c.Ctx, a.Flags)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.ConnectListAllStoragePoolsRet{Ret: uint32(len(pools))}
		if a.NeedResults != 0 {
			ret.Pools = pools
		}
		return ret, nil
	})
	t.ConnectNumOfStoragePools(func(c *Call) (*libvirt.ConnectNumOfStoragePoolsRet, error) {
		return &libvirt.ConnectNumOfStoragePoolsRet{Num: int32(len(st.StoragePoolNames(true)))}, nil
	})
	t.ConnectNumOfDefinedStoragePools(func(c *Call) (*libvirt.ConnectNumOfDefinedStoragePoolsRet, error) {
		return &libvirt.ConnectNumOfDefinedStoragePoolsRet{Num: int32(len(st.StoragePoolNames(false)))}, nil
	})
	list := func(active bool, max int32) ([]string, error) {
		if max < 0 || max > maxStoragePoolList {
			return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "maxnames > REMOTE_STORAGE_POOL_LIST_MAX")
		}
		names := st.StoragePoolNames(active)
		if len(names) > int(max) {
			names = names[:max]
		}
		return names, nil
	}
	t.ConnectListStoragePools(func(c *Call, a *libvirt.ConnectListStoragePoolsArgs) (*libvirt.ConnectListStoragePoolsRet, error) {
		names, err := list(true, a.Maxnames)
		return &libvirt.ConnectListStoragePoolsRet{Names: names}, err
	})
	t.ConnectListDefinedStoragePools(func(c *Call, a *libvirt.ConnectListDefinedStoragePoolsArgs) (*libvirt.ConnectListDefinedStoragePoolsRet, error) {
		names, err := list(false, a.Maxnames)
		return &libvirt.ConnectListDefinedStoragePoolsRet{Names: names}, err
	})
	t.ConnectFindStoragePoolSources(func(c *Call, a *libvirt.ConnectFindStoragePoolSourcesArgs) (*libvirt.ConnectFindStoragePoolSourcesRet, error) {
		// libvirt's dir backend has no source discovery either.
		return nil, compat.Errorf(libvirt.ErrNoSupport, compat.FromStorage, "pool type '%s' does not support source discovery", a.Type)
	})

	t.StoragePoolLookupByName(func(c *Call, a *libvirt.StoragePoolLookupByNameArgs) (*libvirt.StoragePoolLookupByNameRet, error) {
		p, err := st.StoragePoolLookupByName(c.Ctx, a.Name)
		return &libvirt.StoragePoolLookupByNameRet{Pool: p}, err
	})
	t.StoragePoolLookupByUUID(func(c *Call, a *libvirt.StoragePoolLookupByUUIDArgs) (*libvirt.StoragePoolLookupByUUIDRet, error) {
		p, err := st.StoragePoolLookupByUUID(c.Ctx, a.UUID)
		return &libvirt.StoragePoolLookupByUUIDRet{Pool: p}, err
	})
	t.StoragePoolLookupByVolume(func(c *Call, a *libvirt.StoragePoolLookupByVolumeArgs) (*libvirt.StoragePoolLookupByVolumeRet, error) {
		p, err := st.StoragePoolLookupByVolume(c.Ctx, a.Vol)
		return &libvirt.StoragePoolLookupByVolumeRet{Pool: p}, err
	})
	t.StoragePoolLookupByTargetPath(func(c *Call, a *libvirt.StoragePoolLookupByTargetPathArgs) (*libvirt.StoragePoolLookupByTargetPathRet, error) {
		p, err := st.StoragePoolLookupByTargetPath(c.Ctx, a.Path)
		return &libvirt.StoragePoolLookupByTargetPathRet{Pool: p}, err
	})

	t.StoragePoolDefineXML(func(c *Call, a *libvirt.StoragePoolDefineXMLArgs) (*libvirt.StoragePoolDefineXMLRet, error) {
		p, err := st.StoragePoolDefineXML(c.Ctx, a.XML, a.Flags)
		return &libvirt.StoragePoolDefineXMLRet{Pool: p}, err
	})
	t.StoragePoolCreateXML(func(c *Call, a *libvirt.StoragePoolCreateXMLArgs) (*libvirt.StoragePoolCreateXMLRet, error) {
		p, err := st.StoragePoolCreateXML(c.Ctx, a.XML, a.Flags)
		return &libvirt.StoragePoolCreateXMLRet{Pool: p}, err
	})
	t.StoragePoolCreate(func(c *Call, a *libvirt.StoragePoolCreateArgs) error {
		return st.StoragePoolCreate(c.Ctx, a.Pool, a.Flags)
	})
	t.StoragePoolBuild(func(c *Call, a *libvirt.StoragePoolBuildArgs) error {
		return st.StoragePoolBuild(c.Ctx, a.Pool, a.Flags)
	})
	t.StoragePoolDestroy(func(c *Call, a *libvirt.StoragePoolDestroyArgs) error {
		return st.StoragePoolDestroy(c.Ctx, a.Pool)
	})
	t.StoragePoolDelete(func(c *Call, a *libvirt.StoragePoolDeleteArgs) error {
		return st.StoragePoolDelete(c.Ctx, a.Pool, a.Flags)
	})
	t.StoragePoolUndefine(func(c *Call, a *libvirt.StoragePoolUndefineArgs) error {
		return st.StoragePoolUndefine(c.Ctx, a.Pool)
	})
	t.StoragePoolRefresh(func(c *Call, a *libvirt.StoragePoolRefreshArgs) error {
		return st.StoragePoolRefresh(c.Ctx, a.Pool, a.Flags)
	})

	t.StoragePoolGetXMLDesc(func(c *Call, a *libvirt.StoragePoolGetXMLDescArgs) (*libvirt.StoragePoolGetXMLDescRet, error) {
		x, err := st.StoragePoolGetXMLDesc(c.Ctx, a.Pool, a.Flags)
		return &libvirt.StoragePoolGetXMLDescRet{XML: x}, err
	})
	t.StoragePoolGetInfo(func(c *Call, a *libvirt.StoragePoolGetInfoArgs) (*libvirt.StoragePoolGetInfoRet, error) {
		i, err := st.StoragePoolGetInfo(c.Ctx, a.Pool)
		return &libvirt.StoragePoolGetInfoRet{State: uint8(i.State), Capacity: i.Capacity, Allocation: i.Allocation, Available: i.Available}, err
	})
	t.StoragePoolGetAutostart(func(c *Call, a *libvirt.StoragePoolGetAutostartArgs) (*libvirt.StoragePoolGetAutostartRet, error) {
		on, err := st.StoragePoolGetAutostart(c.Ctx, a.Pool)
		return &libvirt.StoragePoolGetAutostartRet{Autostart: boolInt(on)}, err
	})
	t.StoragePoolSetAutostart(func(c *Call, a *libvirt.StoragePoolSetAutostartArgs) error {
		return st.StoragePoolSetAutostart(c.Ctx, a.Pool, a.Autostart != 0)
	})
	t.StoragePoolIsActive(func(c *Call, a *libvirt.StoragePoolIsActiveArgs) (*libvirt.StoragePoolIsActiveRet, error) {
		on, err := st.StoragePoolIsActive(c.Ctx, a.Pool)
		return &libvirt.StoragePoolIsActiveRet{Active: boolInt(on)}, err
	})
	t.StoragePoolIsPersistent(func(c *Call, a *libvirt.StoragePoolIsPersistentArgs) (*libvirt.StoragePoolIsPersistentRet, error) {
		on, err := st.StoragePoolIsPersistent(c.Ctx, a.Pool)
		return &libvirt.StoragePoolIsPersistentRet{Persistent: boolInt(on)}, err
	})
}

func registerStorageVolHandlers(t *Table, st driver.Storage) {
	t.StoragePoolNumOfVolumes(func(c *Call, a *libvirt.StoragePoolNumOfVolumesArgs) (*libvirt.StoragePoolNumOfVolumesRet, error) {
		vols, err := st.StoragePoolListVolumes(c.Ctx, a.Pool)
		return &libvirt.StoragePoolNumOfVolumesRet{Num: int32(len(vols))}, err
	})
	t.StoragePoolListVolumes(func(c *Call, a *libvirt.StoragePoolListVolumesArgs) (*libvirt.StoragePoolListVolumesRet, error) {
		if a.Maxnames < 0 || a.Maxnames > maxStorageVolList {
			return nil, compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "maxnames > REMOTE_STORAGE_VOL_LIST_MAX")
		}
		vols, err := st.StoragePoolListVolumes(c.Ctx, a.Pool)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.StoragePoolListVolumesRet{}
		for _, v := range vols {
			if len(ret.Names) == int(a.Maxnames) {
				break
			}
			ret.Names = append(ret.Names, v.Name)
		}
		return ret, nil
	})
	t.StoragePoolListAllVolumes(func(c *Call, a *libvirt.StoragePoolListAllVolumesArgs) (*libvirt.StoragePoolListAllVolumesRet, error) {
		if a.Flags != 0 {
			return nil, compat.Errorf(libvirt.ErrInvalidArg, compat.FromStorage, "unsupported flags (0x%x) in function storagePoolListAllVolumes", a.Flags)
		}
		vols, err := st.StoragePoolListVolumes(c.Ctx, a.Pool)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.StoragePoolListAllVolumesRet{Ret: uint32(len(vols))}
		if a.NeedResults != 0 {
			ret.Vols = vols
		}
		return ret, nil
	})

	t.StorageVolLookupByName(func(c *Call, a *libvirt.StorageVolLookupByNameArgs) (*libvirt.StorageVolLookupByNameRet, error) {
		v, err := st.StorageVolLookupByName(c.Ctx, a.Pool, a.Name)
		return &libvirt.StorageVolLookupByNameRet{Vol: v}, err
	})
	t.StorageVolLookupByKey(func(c *Call, a *libvirt.StorageVolLookupByKeyArgs) (*libvirt.StorageVolLookupByKeyRet, error) {
		v, err := st.StorageVolLookupByKey(c.Ctx, a.Key)
		return &libvirt.StorageVolLookupByKeyRet{Vol: v}, err
	})
	t.StorageVolLookupByPath(func(c *Call, a *libvirt.StorageVolLookupByPathArgs) (*libvirt.StorageVolLookupByPathRet, error) {
		v, err := st.StorageVolLookupByPath(c.Ctx, a.Path)
		return &libvirt.StorageVolLookupByPathRet{Vol: v}, err
	})

	t.StorageVolCreateXML(func(c *Call, a *libvirt.StorageVolCreateXMLArgs) (*libvirt.StorageVolCreateXMLRet, error) {
		v, err := st.StorageVolCreateXML(c.Ctx, a.Pool, a.XML, a.Flags)
		return &libvirt.StorageVolCreateXMLRet{Vol: v}, err
	})
	t.StorageVolCreateXMLFrom(func(c *Call, a *libvirt.StorageVolCreateXMLFromArgs) (*libvirt.StorageVolCreateXMLFromRet, error) {
		v, err := st.StorageVolCreateXMLFrom(c.Ctx, a.Pool, a.XML, a.Clonevol, a.Flags)
		return &libvirt.StorageVolCreateXMLFromRet{Vol: v}, err
	})
	t.StorageVolDelete(func(c *Call, a *libvirt.StorageVolDeleteArgs) error {
		return st.StorageVolDelete(c.Ctx, a.Vol, a.Flags)
	})
	t.StorageVolWipe(func(c *Call, a *libvirt.StorageVolWipeArgs) error {
		return st.StorageVolWipe(c.Ctx, a.Vol, libvirt.StorageVolWipeAlgZero, a.Flags)
	})
	t.StorageVolWipePattern(func(c *Call, a *libvirt.StorageVolWipePatternArgs) error {
		return st.StorageVolWipe(c.Ctx, a.Vol, libvirt.StorageVolWipeAlgorithm(a.Algorithm), a.Flags)
	})
	t.StorageVolResize(func(c *Call, a *libvirt.StorageVolResizeArgs) error {
		return st.StorageVolResize(c.Ctx, a.Vol, a.Capacity, a.Flags)
	})
	t.StorageVolGetXMLDesc(func(c *Call, a *libvirt.StorageVolGetXMLDescArgs) (*libvirt.StorageVolGetXMLDescRet, error) {
		x, err := st.StorageVolGetXMLDesc(c.Ctx, a.Vol, a.Flags)
		return &libvirt.StorageVolGetXMLDescRet{XML: x}, err
	})
	t.StorageVolGetInfo(func(c *Call, a *libvirt.StorageVolGetInfoArgs) (*libvirt.StorageVolGetInfoRet, error) {
		i, err := st.StorageVolGetInfo(c.Ctx, a.Vol, 0)
		return &libvirt.StorageVolGetInfoRet{Type: int8(i.Type), Capacity: i.Capacity, Allocation: i.Allocation}, err
	})
	t.StorageVolGetInfoFlags(func(c *Call, a *libvirt.StorageVolGetInfoFlagsArgs) (*libvirt.StorageVolGetInfoFlagsRet, error) {
		i, err := st.StorageVolGetInfo(c.Ctx, a.Vol, libvirt.StorageVolInfoFlags(a.Flags))
		return &libvirt.StorageVolGetInfoFlagsRet{Type: int8(i.Type), Capacity: i.Capacity, Allocation: i.Allocation}, err
	})
	t.StorageVolGetPath(func(c *Call, a *libvirt.StorageVolGetPathArgs) (*libvirt.StorageVolGetPathRet, error) {
		p, err := st.StorageVolGetPath(c.Ctx, a.Vol)
		return &libvirt.StorageVolGetPathRet{Name: p}, err
	})
}
