import com.sun.management.ThreadMXBean;
import com.sun.tools.attach.VirtualMachine;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * A running Kafka broker's request counters and its Java threads' CPU, over JMX, without any flag at the broker's
 * start: the attach API starts the JVM's local management agent (same user). One snapshot per line read from stdin,
 * tab-separated lines ended by "END":
 *   req  REQUEST  VERSION  METRIC  COUNT  MEAN     (RequestMetrics: METRICS)
 *   thread  NAME  CPU_NS
 * bench/kafka_requests.py runs it with the JDK's single-file launcher: java KafkaRequests.java PID
 */
public class KafkaRequests {
    static final String[] METRICS = {"RequestsPerSec", "TotalTimeMs", "LocalTimeMs", "RemoteTimeMs"};

    public static void main(String[] args) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        String address;
        try {
            address = vm.startLocalManagementAgent();
        } finally {
            vm.detach();
        }
        try (JMXConnector jmx = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
            MBeanServerConnection server = jmx.getMBeanServerConnection();
            ThreadMXBean threads = ManagementFactory.newPlatformMXBeanProxy(
                server, ManagementFactory.THREAD_MXBEAN_NAME, ThreadMXBean.class);
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            while (in.readLine() != null) {
                requests(server);
                threads(threads);
                System.out.println("END");
                System.out.flush();
            }
        }
    }

    static void requests(MBeanServerConnection server) throws Exception {
        for (String metric : METRICS) {  // a few names only: every MBean read is a round trip the broker serves
            ObjectName pattern = new ObjectName("kafka.network:type=RequestMetrics,name=" + metric + ",*");
            for (ObjectName name : server.queryNames(pattern, null)) {
                String request = name.getKeyProperty("request");
                String version = name.getKeyProperty("version");
                Object count = server.getAttribute(name, "Count");
                if (request == null || ((Number) count).longValue() == 0) {
                    continue;
                }
                Object mean = metric.endsWith("TimeMs") ? server.getAttribute(name, "Mean") : 0.0;
                System.out.println("req\t" + request + "\t" + (version == null ? "-" : version) + "\t" + metric
                                   + "\t" + count + "\t" + mean);
            }
        }
    }

    static void threads(ThreadMXBean threads) {
        long[] ids = threads.getAllThreadIds();
        long[] cpu = threads.getThreadCpuTime(ids);
        ThreadInfo[] infos = threads.getThreadInfo(ids);
        for (int i = 0; i < ids.length; i++) {
            if (infos[i] != null && cpu[i] >= 0) {
                System.out.println("thread\t" + infos[i].getThreadName() + "\t" + cpu[i]);
            }
        }
    }
}
