package compat

// Feature is a driver feature a client may ask about with
// CONNECT_SUPPORTS_FEATURE (virDrvFeature in libvirt_internal.h).
type Feature int32

// Driver features.
const (
	FeatureMigrationV1                  Feature = 1
	FeatureRemote                       Feature = 2
	FeatureMigrationV2                  Feature = 3
	FeatureMigrationP2P                 Feature = 4
	FeatureMigrationDirect              Feature = 5
	FeatureMigrationV3                  Feature = 6
	FeatureMigrateChangeProtection      Feature = 7
	FeatureFDPassing                    Feature = 8
	FeatureTypedParamString             Feature = 9
	FeatureProgramKeepalive             Feature = 10
	FeatureXMLMigratable                Feature = 11
	FeatureMigrationOffline             Feature = 12
	FeatureMigrationParams              Feature = 13
	FeatureRemoteEventCallback          Feature = 14
	FeatureRemoteCloseCallback          Feature = 15
	FeatureNetworkUpdateHasCorrectOrder Feature = 16
)

// Features answers CONNECT_SUPPORTS_FEATURE truthfully: a feature is listed
// only once govirtd implements it end to end. A client that is told 0 takes
// another code path (e.g. without MIGRATION_PARAMS virsh uses the older
// migration procedures), so a wrong 1 breaks clients and a wrong 0 only
// narrows them.
var Features = map[Feature]bool{
	// The remote driver answers REMOTE itself, but libvirtd answers it too.
	FeatureRemote: true,
	// TYPED_PARAM_STRING: string typed parameters travel fine in XDR.
	FeatureTypedParamString: true,
	FeatureProgramKeepalive: true,
	// Event callbacks are registered per connection and answered (lifecycle
	// events are delivered once domains exist).
	FeatureRemoteEventCallback: true,
	// CONNECT_REGISTER_CLOSE_CALLBACK is accepted; nothing else is needed on
	// the server side for it.
	FeatureRemoteCloseCallback: true,
	// Migration protocol v3 with typed parameters, managed and
	// peer-to-peer, offline, with change protection (the job lock is held
	// from Begin to Confirm) and migratable XML (VIR_DOMAIN_XML_MIGRATABLE).
	// Not v1/v2 and not direct migration.
	FeatureMigrationV3:             true,
	FeatureMigrationParams:         true,
	FeatureMigrationP2P:            true,
	FeatureMigrationOffline:        true,
	FeatureMigrateChangeProtection: true,
	FeatureXMLMigratable:           true,
}

// Supports reports whether feature f is implemented.
func Supports(f Feature) bool { return Features[f] }
