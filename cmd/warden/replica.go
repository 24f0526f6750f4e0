package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/provider/kubernetes"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/server"
)

// replicaID is the ID of `warden serve` as a replica on the kubernetes
// provider (ADR 0016): SANDBOX__KUBERNETES_REPLICA_ID, else the host name
// made a DNS label (in a pod, the host name is the pod's name).
func replicaID(cfg config.Config) (string, error) {
	if cfg.Sandbox.Provider != config.ProviderKubernetes {
		return "", nil
	}
	if id := cfg.Sandbox.KubernetesReplicaID; id != "" {
		return id, nil
	}
	host, _ := os.Hostname()
	var b strings.Builder
	for _, c := range strings.ToLower(host) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	id := strings.Trim(b.String(), "-")
	if len(id) > 48 {
		id = strings.Trim(id[:48], "-")
	}
	if err := kubernetes.ValidateReplicaID(id); err != nil {
		return "", fmt.Errorf("the host name %q makes no replica ID; set SANDBOX__KUBERNETES_REPLICA_ID: %w", host, sandbox.ErrInvalid)
	}
	return id, nil
}

// replicaAddress is the base URL other replicas reach this one at:
// SANDBOX__KUBERNETES_REPLICA_ADDRESS, else the listener's address when
// it is a specific one.
func replicaAddress(cfg config.Config, ln net.Listener) (string, error) {
	if a := cfg.Sandbox.KubernetesReplicaAddress; a != "" {
		return a, nil
	}
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil || ap.Addr().IsUnspecified() {
		return "", fmt.Errorf("API__HOST %s listens on every address: set SANDBOX__KUBERNETES_REPLICA_ADDRESS to the URL the other replicas reach this one at, such as http://$(POD_IP):8000: %w",
			cfg.API.Host, sandbox.ErrInvalid)
	}
	return "http://" + ap.String(), nil
}

// replicas adapts the kubernetes provider to server.Replicas.
type replicas struct{ p *kubernetes.Provider }

var _ server.Replicas = replicas{}

func (r replicas) ID() string { return r.p.ReplicaID() }

func (r replicas) Locate(ctx context.Context, id sandbox.ID) (server.Location, error) {
	o, err := r.p.Owner(ctx, id)
	return server.Location{Replica: o.Replica, Address: o.Address, Adoptable: o.Adoptable, Expires: o.Expires}, err
}

func (r replicas) Adopt(ctx context.Context, id sandbox.ID) (sandbox.Info, error) {
	return r.p.Adopt(ctx, id)
}

func (r replicas) Release(ctx context.Context, id sandbox.ID) error { return r.p.Release(ctx, id) }

func (r replicas) Peers(ctx context.Context) (map[string]string, error) { return r.p.Peers(ctx) }
