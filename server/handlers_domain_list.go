package server

import (
	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/govirtd/govirtd/compat"
)

// registerDomainListHandlers binds the domain enumeration calls: the modern
// CONNECT_LIST_ALL_DOMAINS and the older id/name lists that some tools
// still use.
func registerDomainListHandlers(t *Table, s *Server) {
	t.ConnectListAllDomains(func(c *Call, a *libvirt.ConnectListAllDomainsArgs) (*libvirt.ConnectListAllDomainsRet, error) {
		doms, err := s.drv.ListAllDomains(c.Ctx, a.Flags)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.ConnectListAllDomainsRet{Ret: uint32(len(doms))}
		// need_results=0 asks only for the count.
		if a.NeedResults != 0 {
			ret.Domains = doms
		}
		body, err := s.listReplies.body(listKey{a.Flags, a.NeedResults != 0}, doms, ret)
		if err != nil {
			return nil, err
		}
		c.encoded = body
		return ret, nil
	})
	t.ConnectNumOfDomains(func(c *Call) (*libvirt.ConnectNumOfDomainsRet, error) {
		doms, err := s.drv.ListAllDomains(c.Ctx, libvirt.ConnectListDomainsActive)
		if err != nil {
			return nil, err
		}
		return &libvirt.ConnectNumOfDomainsRet{Num: int32(len(doms))}, nil
	})
	t.ConnectListDomains(func(c *Call, a *libvirt.ConnectListDomainsArgs) (*libvirt.ConnectListDomainsRet, error) {
		if err := checkMaxList(a.Maxids, "maxids"); err != nil {
			return nil, err
		}
		doms, err := s.drv.ListAllDomains(c.Ctx, libvirt.ConnectListDomainsActive)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.ConnectListDomainsRet{}
		for _, d := range doms {
			if len(ret.Ids) == int(a.Maxids) {
				break
			}
			ret.Ids = append(ret.Ids, d.ID)
		}
		return ret, nil
	})
	t.ConnectNumOfDefinedDomains(func(c *Call) (*libvirt.ConnectNumOfDefinedDomainsRet, error) {
		doms, err := s.drv.ListAllDomains(c.Ctx, libvirt.ConnectListDomainsInactive)
		if err != nil {
			return nil, err
		}
		return &libvirt.ConnectNumOfDefinedDomainsRet{Num: int32(len(doms))}, nil
	})
	t.ConnectListDefinedDomains(func(c *Call, a *libvirt.ConnectListDefinedDomainsArgs) (*libvirt.ConnectListDefinedDomainsRet, error) {
		if err := checkMaxList(a.Maxnames, "maxnames"); err != nil {
			return nil, err
		}
		doms, err := s.drv.ListAllDomains(c.Ctx, libvirt.ConnectListDomainsInactive)
		if err != nil {
			return nil, err
		}
		ret := &libvirt.ConnectListDefinedDomainsRet{}
		for _, d := range doms {
			if len(ret.Names) == int(a.Maxnames) {
				break
			}
			ret.Names = append(ret.Names, d.Name)
		}
		return ret, nil
	})
}

// maxDomainList is REMOTE_DOMAIN_LIST_MAX: the most ids or names one reply
// may carry.
const maxDomainList = 16384

func checkMaxList(n int32, what string) error {
	if n < 0 || n > maxDomainList {
		return compat.Errorf(libvirt.ErrRPC, compat.FromRPC, "%s > REMOTE_DOMAIN_LIST_MAX", what)
	}
	return nil
}
