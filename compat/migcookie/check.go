package migcookie

import "slices"

// CheckDomain is libvirt's check that the cookie belongs to the domain
// being migrated (qemuMigrationCookieXMLParse): name, then UUID, compared
// as strings. name is the domain's original name (libvirt's origname), not
// a --dname rename.
func (c *Cookie) CheckDomain(name, uuid string) error {
	if c.Name != name {
		return internal("Incoming cookie data had unexpected name %s vs %s", c.Name, name)
	}
	if c.UUID != uuid {
		return internal("Incoming cookie data had unexpected UUID %s vs %s", c.UUID, uuid)
	}
	return nil
}

// CheckHost is libvirt's refusal to migrate a guest to the host it runs
// on. libvirt compares host UUIDs only, as bytes (the hostname check was
// dropped because two hosts may share a name).
func (c *Cookie) CheckHost(localHostUUID string) error {
	remote, ok := parseUUID(c.HostUUID)
	if !ok {
		return internal("malformed hostuuid element in migration data")
	}
	if local, ok := parseUUID(localHostUUID); ok && local == remote {
		return internal("Attempt to migrate guest to the same host %s", c.HostUUID)
	}
	return nil
}

// CheckMandatory is qemuMigrationCookieXMLParseMandatoryFeatures: every
// <feature name='X'/> must be a feature libvirt knows, and one the
// receiver reads in this step (supported, e.g. FeatureLockState and
// FeatureCPU when a destination parses the Begin cookie).
func (c *Cookie) CheckMandatory(supported []string) error {
	for _, f := range c.Features {
		if featureIndex(f) < 0 {
			return internal("Unknown migration cookie feature %s", f)
		}
		if !slices.Contains(supported, f) {
			return internal("Unsupported migration cookie feature %s", f)
		}
	}
	return nil
}

// Check runs CheckDomain, CheckHost and CheckMandatory in the order
// libvirt checks an incoming cookie, so the first error is the one
// libvirt would report.
func (c *Cookie) Check(name, uuid, localHostUUID string, supported []string) error {
	if err := c.CheckDomain(name, uuid); err != nil {
		return err
	}
	if err := c.CheckHost(localHostUUID); err != nil {
		return err
	}
	return c.CheckMandatory(supported)
}
