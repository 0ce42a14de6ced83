package compat_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govirtd/govirtd/test/deps"
)

// TestAnsibleCommunityLibvirt: Ansible's community.libvirt modules
// (Debian's ansible package), unmodified, manage a storage pool (virt_pool:
// define, build, start, autostart, facts, destroy, delete, undefine), a
// virtual network (virt_net: define, start, facts, remove) and a guest
// (virt: define, start, status, destroy, undefine) on a govirtd host; the
// playbook's own asserts check what the modules report, and virsh checks
// what was left.
func TestAnsibleCommunityLibvirt(t *testing.T) {
	requireNetworkTools(t)
	deps.Require(t, "ansible-playbook", "/usr/lib/python3/dist-packages/ansible_collections/community/libvirt/plugins/modules/virt.py", "qemu-system-x86_64", "/usr/lib/python3/dist-packages/lxml/__init__.py")
	h := StartHost(t, HostOptions{NetNS: true})
	uri := h.UnixURI()
	write := func(name, content string) string {
		p := filepath.Join(h.Dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	poolDir := filepath.Join(h.Dir, "ans-pool")
	write("pool.xml", "<pool type='dir'><name>ans</name><target><path>"+poolDir+"</path></target></pool>")
	write("net.xml", "<network><name>ansnet</name><bridge name='gvans0'/><ip address='10.98.0.1' prefix='24'/></network>")
	write("dom.xml", GuestXML(t, GuestOptions{Name: "ansvm", Serial: filepath.Join(h.Dir, "ansvm.serial")}))
	playbook := write("playbook.yml", `- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: /usr/bin/python3
    uri: "`+uri+`"
  tasks:
    - name: define the pool
      community.libvirt.virt_pool: {command: define, name: ans, xml: "{{ lookup('file', 'pool.xml') }}", uri: "{{ uri }}"}
    - name: build it
      community.libvirt.virt_pool: {command: build, name: ans, uri: "{{ uri }}"}
    - name: start it
      community.libvirt.virt_pool: {state: active, name: ans, uri: "{{ uri }}"}
    - name: autostart it
      community.libvirt.virt_pool: {autostart: true, name: ans, uri: "{{ uri }}"}
    - name: pool facts
      community.libvirt.virt_pool: {command: facts, uri: "{{ uri }}"}
    - assert:
        that:
          - ansible_libvirt_pools.ans.status == "running"
          - ansible_libvirt_pools.ans.autostart == "yes"
          - ansible_libvirt_pools.ans.path == "`+poolDir+`"
    - name: define the network
      community.libvirt.virt_net: {command: define, name: ansnet, xml: "{{ lookup('file', 'net.xml') }}", uri: "{{ uri }}"}
    - name: start it
      community.libvirt.virt_net: {state: active, name: ansnet, uri: "{{ uri }}"}
    - name: network facts
      community.libvirt.virt_net: {command: facts, uri: "{{ uri }}"}
    - assert:
        that:
          - ansible_libvirt_networks.ansnet.state == "active"
          - ansible_libvirt_networks.ansnet.bridge == "gvans0"
    - name: define the guest
      community.libvirt.virt: {command: define, xml: "{{ lookup('file', 'dom.xml') }}", uri: "{{ uri }}"}
    - name: start it
      community.libvirt.virt: {state: running, name: ansvm, uri: "{{ uri }}"}
    - name: guest status
      community.libvirt.virt: {command: status, name: ansvm, uri: "{{ uri }}"}
      register: vm
    - assert:
        that: vm.status == "running"
    - name: starting it again changes nothing
      community.libvirt.virt: {state: running, name: ansvm, uri: "{{ uri }}"}
      register: again
    - assert:
        that: not again.changed
    - name: destroy the guest
      community.libvirt.virt: {state: destroyed, name: ansvm, uri: "{{ uri }}"}
    - name: undefine it
      community.libvirt.virt: {command: undefine, name: ansvm, uri: "{{ uri }}"}
    - name: remove the network
      community.libvirt.virt_net: {state: absent, name: ansnet, uri: "{{ uri }}"}
    - name: stop the pool
      community.libvirt.virt_pool: {state: inactive, name: ans, uri: "{{ uri }}"}
    - name: delete its directory
      community.libvirt.virt_pool: {state: deleted, name: ans, uri: "{{ uri }}"}
    - name: undefine it
      community.libvirt.virt_pool: {state: undefined, name: ans, uri: "{{ uri }}"}
`)
	r := run(t, 5*time.Minute, "ansible-playbook", "-i", "localhost,", playbook)
	if r.Err != nil {
		t.Fatalf("ansible-playbook: %s", r)
	}
	recap := regexp.MustCompile(`localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0`).FindStringSubmatch(r.Stdout)
	if recap == nil {
		t.Fatalf("no clean play recap:\n%s", r.Stdout)
	}
	t.Logf("ansible: ok=%s changed=%s", recap[1], recap[2])
	for _, c := range [][]string{{"list", "--all", "--name"}, {"net-list", "--all", "--name"}, {"pool-list", "--all", "--name"}} {
		// The host's own default network stays.
		if got := strings.TrimSpace(MustVirsh(t, uri, c...)); got != "" && got != "default" {
			t.Errorf("virsh %s after the playbook: %q", c[0], got)
		}
	}
	if _, err := os.Stat(poolDir); !os.IsNotExist(err) {
		t.Errorf("the pool's directory is still there: %v", err)
	}
}
