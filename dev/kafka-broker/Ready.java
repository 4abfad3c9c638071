// Exits 0 once the broker at args[0] answers a metadata request (describeCluster), 1 otherwise.
// args[1]: seconds to wait (default 60); args[2]: a Java client properties file (security settings
// of the secured broker; absent for the plain one).
// Run by dev/kafka as a single-file Java program on the broker's own classpath.
import java.io.FileReader;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class Ready {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        if (args.length > 2) {
            try (FileReader r = new FileReader(args[2])) {
                props.load(r);
            }
        }
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args.length > 1 ? args[1] : "60"));
        try (Admin admin = Admin.create(props)) {
            while (true) {
                try {
                    int nodes = admin.describeCluster().nodes().get(3, TimeUnit.SECONDS).size();
                    if (nodes > 0) {
                        System.out.println("broker ready at " + args[0] + " (" + nodes + " node)");
                        System.exit(0);
                    }
                } catch (Exception e) {
                    if (System.nanoTime() > deadline) {
                        System.err.println("broker at " + args[0] + " did not answer metadata: " + e.getMessage());
                        System.exit(1);
                    }
                    Thread.sleep(300);
                }
            }
        }
    }
}
