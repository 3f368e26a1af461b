// Command labetcd runs one member of the lab's etcd cluster with the real
// etcd server code (go.etcd.io/etcd/server/v3/embed). A member restarted with
// its data directory rejoins the cluster.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	name := flag.String("name", "", "member name")
	dir := flag.String("data-dir", "", "data directory")
	client := flag.String("client-url", "", "client URL, e.g. http://127.0.0.1:12379")
	peer := flag.String("peer-url", "", "peer URL, e.g. http://127.0.0.1:12380")
	cluster := flag.String("initial-cluster", "", "name=peerURL,... of all members")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*name, *dir, *client, *peer, *cluster, log); err != nil {
		log.Error("labetcd", "member", *name, "err", err)
		os.Exit(1)
	}
}

func run(name, dir, client, peer, cluster string, log *slog.Logger) error {
	cu, err := url.Parse(client)
	if err != nil {
		return fmt.Errorf("--client-url: %w", err)
	}
	pu, err := url.Parse(peer)
	if err != nil {
		return fmt.Errorf("--peer-url: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = name, dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cluster
	cfg.InitialClusterToken = "regionsync-lab"
	cfg.ClusterState = embed.ClusterStateFlagNew
	if _, err := os.Stat(filepath.Join(dir, "member")); err == nil {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	cfg.LogLevel = "warn"
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = "periodic", "1h"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-e.Server.ReadyNotify():
		log.Info("etcd member ready", "name", name, "client", client, "state", cfg.ClusterState)
	case <-time.After(120 * time.Second):
		log.Warn("etcd member not ready after 120s (no quorum yet?); still running", "name", name)
	case s := <-sig:
		log.Info("stopping", "signal", s)
		return nil
	}
	select {
	case err := <-e.Err():
		return err
	case s := <-sig:
		log.Info("stopping", "signal", s)
		return nil
	}
}
