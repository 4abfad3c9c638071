// Creates (or updates) SCRAM-SHA-512 users on the secured broker through the Admin API, as its
// admin user: ScramUsers BOOTSTRAP ADMIN_PROPERTIES PASSWORD_DIR NAME...
// Each NAME's password is read from PASSWORD_DIR/NAME.password. Upserting an existing user with
// its own password is harmless, so dev/kafka may run this on every start.
// Run by dev/kafka as a single-file Java program on the broker's own classpath.
import java.io.FileReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class ScramUsers {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileReader r = new FileReader(args[1])) {
            props.load(r);
        }
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        List<UserScramCredentialAlteration> upserts = new ArrayList<>();
        for (int i = 3; i < args.length; i++) {
            String password = Files.readString(Path.of(args[2], args[i] + ".password")).trim();
            upserts.add(new UserScramCredentialUpsertion(
                args[i], new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), password));
        }
        try (Admin admin = Admin.create(props)) {
            admin.alterUserScramCredentials(upserts).all().get(60, TimeUnit.SECONDS);
        }
        System.out.println("SCRAM-SHA-512 users: " + (args.length - 3));
    }
}
