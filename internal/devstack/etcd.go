package devstack

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// etcdCluster is a real multi-member etcd cluster in this process, one
// embed.Etcd per member, spread over the dev regions plus a witness.
type etcdCluster struct {
	members   []*embed.Etcd
	endpoints []string
}

// startEtcd starts one member per name and waits until the cluster has a
// leader and every member is ready, or timeout passes.
func startEtcd(dir string, names []string, timeout time.Duration) (*etcdCluster, error) {
	ports, err := freePorts(2 * len(names))
	if err != nil {
		return nil, err
	}
	initial := make([]string, len(names))
	for i, n := range names {
		initial[i] = fmt.Sprintf("%s=http://127.0.0.1:%d", n, ports[2*i+1])
	}
	c := &etcdCluster{}
	for i, name := range names {
		cfg := embed.NewConfig()
		cfg.Name = name
		cfg.Dir = filepath.Join(dir, "etcd-"+name)
		client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])}
		peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "regionsync-dev"
		cfg.LogLevel = "error"
		cfg.Logger = "zap"
		cfg.LogOutputs = []string{filepath.Join(dir, "etcd-"+name+".log")}
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("devstack: start etcd member %q (client %s, peer %s): %w", name, client.Host, peer.Host, err)
		}
		c.members = append(c.members, e)
		c.endpoints = append(c.endpoints, client.String())
	}
	deadline := time.After(timeout)
	for i, e := range c.members {
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			c.close()
			return nil, fmt.Errorf("devstack: etcd member %q: %w", names[i], err)
		case <-deadline:
			c.close()
			return nil, fmt.Errorf("devstack: etcd member %q not ready after %s", names[i], timeout)
		}
	}
	return c, nil
}

func (c *etcdCluster) close() {
	for _, e := range c.members {
		e.Close()
	}
	c.members = nil
}
