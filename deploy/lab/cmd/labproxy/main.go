// Command labproxy runs toxiproxy (github.com/Shopify/toxiproxy/v2, as a
// library) between east's clients and west's servers, so tests can cut or
// slow the link between the regions. Its HTTP API speaks the toxiproxy
// protocol (use its client package).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	api := flag.String("api", "127.0.0.1:18474", "host:port of the toxiproxy HTTP API")
	proxies := flag.String("proxies", "", "name=listen>upstream,... e.g. kafka-west=127.0.0.1:30092>127.0.0.1:29092")
	flag.Parse()
	logger := zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
	for _, spec := range strings.Split(*proxies, ",") {
		if spec == "" {
			continue
		}
		name, rest, ok1 := strings.Cut(spec, "=")
		listen, upstream, ok2 := strings.Cut(rest, ">")
		if !ok1 || !ok2 {
			fmt.Fprintf(os.Stderr, "labproxy: --proxies: %q is not name=listen>upstream\n", spec)
			os.Exit(2)
		}
		if err := server.Collection.Add(toxiproxy.NewProxy(server, name, listen, upstream), true); err != nil {
			fmt.Fprintf(os.Stderr, "labproxy: proxy %s (%s -> %s): %v\n", name, listen, upstream, err)
			os.Exit(1)
		}
	}
	host, port, _ := strings.Cut(*api, ":")
	server.Listen(host, port) // blocks; SIGTERM ends the process
}
