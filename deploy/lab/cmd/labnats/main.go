// Command labnats runs one real nats-server (nats-server/v2) with JetStream
// for the lab; with -gateway and -gateways several servers form a
// super-cluster.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	name := flag.String("name", "", "server and cluster name")
	port := flag.Int("port", 4222, "client port")
	dir := flag.String("store-dir", "", "JetStream store directory")
	gwPort := flag.Int("gateway-port", 0, "gateway port (0: no super-cluster)")
	gws := flag.String("gateways", "", "name=nats://host:port,... of every cluster's gateway")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*name, *port, *dir, *gwPort, *gws, log); err != nil {
		log.Error("labnats", "server", *name, "err", err)
		os.Exit(1)
	}
}

func run(name string, port int, dir string, gwPort int, gws string, log *slog.Logger) error {
	opts := &server.Options{
		ServerName: name, Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: dir, JetStreamDomain: "",
		NoSigs: true,
	}
	if gwPort > 0 {
		opts.Gateway = server.GatewayOpts{Name: name, Host: "127.0.0.1", Port: gwPort}
		for _, g := range strings.Split(gws, ",") {
			n, u, ok := strings.Cut(g, "=")
			if !ok {
				return fmt.Errorf("--gateways: %q is not name=url", g)
			}
			pu, err := url.Parse(u)
			if err != nil {
				return fmt.Errorf("--gateways %q: %w", g, err)
			}
			opts.Gateway.Gateways = append(opts.Gateway.Gateways, &server.RemoteGatewayOpts{Name: n, URLs: []*url.URL{pu}})
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		return fmt.Errorf("not ready after 30s")
	}
	log.Info("nats ready", "server", name, "url", s.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}
