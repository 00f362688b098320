// Calling everest from Java with JDBC (Debian 12: libpostgresql-jdbc-java and default-jdk-headless),
// run as a single-file source program:
//
//   java -cp /usr/share/java/postgresql.jar EverestExample.java [jdbc:postgresql://host:port/dbname?user=...]
//
// Without an argument the URL is built from PGHOST (a host name or address: pgjdbc does not speak
// Unix sockets), PGPORT, PGDATABASE and PGUSER. The database needs CREATE EXTENSION everest; the
// program appends to the stream account-1 (deleting it first) and moves the handler "example". It
// prints one line per step and exits 1 when a step does not behave as expected
// (test/shell/clients.sh runs it).
import java.sql.*;
import java.util.*;
import org.postgresql.util.PSQLException;

public class EverestExample {
  static boolean failed = false;

  static void step(String label, String actual, String expected) {
    System.out.println(label + ": " + actual);
    if (!actual.equals(expected)) {
      failed = true;
      System.err.println("unexpected " + label + ": got '" + actual + "', expected '" + expected + "'");
    }
  }

  // Runs a statement that must fail; returns "SQLSTATE message".
  static String sqlstateOf(Connection c, String sql, Object... params) {
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      for (int i = 0; i < params.length; i++) ps.setObject(i + 1, params[i]);
      ps.executeQuery();
      return "no error";
    } catch (SQLException e) {
      // getSQLState() is the SQLSTATE; getMessage() adds "ERROR: " and the hint, so take the
      // server's own message from pgjdbc's PSQLException.
      String message = e instanceof PSQLException p && p.getServerErrorMessage() != null
          ? p.getServerErrorMessage().getMessage() : e.getMessage();
      return e.getSQLState() + " " + message;
    }
  }

  public static void main(String[] args) throws SQLException {
    Map<String, String> env = System.getenv();
    String url = args.length > 0 ? args[0]
        : "jdbc:postgresql://" + env.getOrDefault("PGHOST", "localhost") + ":" + env.getOrDefault("PGPORT", "5432")
          + "/" + env.getOrDefault("PGDATABASE", "postgres");
    Properties props = new Properties();
    if (env.containsKey("PGUSER") && !url.contains("user=")) props.setProperty("user", env.get("PGUSER"));
    // prepareThreshold=0: never a named server-side prepared statement, so the same code runs
    // through PgBouncer in transaction mode.
    props.setProperty("prepareThreshold", "0");
    String stream = "account-1", handler = "example";
    try (Connection c = DriverManager.getConnection(url, props)) {
      try (PreparedStatement ps = c.prepareStatement("SELECT everest.delete_stream(?), everest.reset_handler(?)")) {
        ps.setString(1, stream);
        ps.setString(2, handler);
        ps.executeQuery();
      }

      // a. jsonb: setString sends varchar, which no everest function takes: cast it, ?::jsonb.
      String events = "[{\"type\": \"Opened\", \"data\": {\"owner\": \"Ada\"}},"
          + " {\"type\": \"Deposited\", \"data\": {\"amount\": 100}}]";
      long p1, p3;
      try (PreparedStatement ps = c.prepareStatement("SELECT * FROM everest.append_events(?, ?::jsonb, ?)")) {
        ps.setString(1, stream);
        ps.setString(2, events);
        ps.setLong(3, -1);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          p1 = rs.getLong("first_position");
          step("append_events", "versions " + rs.getLong("first_version") + ".." + rs.getLong("last_version")
              + ", positions " + p1 + ".." + rs.getLong("last_position"), "versions 0..1, positions " + p1 + ".." + (p1 + 1));
        }
      }

      // b. named arguments, on a connection with stringtype=unspecified: every setString is sent
      // untyped and the server infers jsonb, no cast needed (but a text overload could then be
      // ambiguous: the cast is the more explicit way).
      Properties unspecified = (Properties) props.clone();
      unspecified.setProperty("stringtype", "unspecified");
      try (Connection u = DriverManager.getConnection(url, unspecified);
           PreparedStatement ps = u.prepareStatement(
               "SELECT * FROM everest.append_event(stream => ?, type => ?, data => ?, expected_version => ?)")) {
        ps.setString(1, stream);
        ps.setString(2, "Withdrawn");
        ps.setString(3, "{\"amount\": 30}");
        ps.setLong(4, 1);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          p3 = rs.getLong("last_position");
          step("append_event (named arguments)", "version " + rs.getLong("last_version") + ", position " + p3,
              "version 2, position " + (p3 > p1 + 1 ? String.valueOf(p3) : "above the batch"));
        }
      }

      // c. bigint columns: getLong (64 bits; everest keeps positions below 2^53 anyway)
      try (PreparedStatement ps = c.prepareStatement("SELECT version, position FROM everest.read_stream_forward(?)")) {
        ps.setString(1, stream);
        StringJoiner got = new StringJoiner(" ");
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) got.add(rs.getLong("version") + "@" + rs.getLong("position"));
        }
        step("read_stream_forward", got.toString(), "0@" + p1 + " 1@" + (p1 + 1) + " 2@" + p3);
      }

      // d. a wrong expected version: SQLException.getSQLState()
      step("wrong expected_version",
          sqlstateOf(c, "SELECT * FROM everest.append_event(?, ?, expected_version => ?)", stream, "Closed", 1L),
          "EV001 wrong expected version for stream \"" + stream + "\": expected 1, actual 2");

      // e. a malformed id, a NULL stream
      step("malformed id", sqlstateOf(c, "SELECT * FROM everest.append_events(?, ?::jsonb)", stream,
          "[{\"type\": \"X\", \"id\": \"not-a-uuid\"}]"),
          "22P02 invalid event at index 0: invalid input syntax for type uuid: \"not-a-uuid\"");
      step("null stream", sqlstateOf(c, "SELECT * FROM everest.append_event(?, ?)", null, "X"),
          "22004 stream must not be null");

      // f. POSITION is an SQL keyword: as a named argument it must be double-quoted.
      step("unquoted position =>",
          sqlstateOf(c, "SELECT everest.save_handler_position(handler => ?, position => ?)", handler, p1 + 1),
          "42601 syntax error at or near \"=>\"");
      try (PreparedStatement ps = c.prepareStatement(
               "SELECT everest.save_handler_position(handler => ?, \"position\" => ?)");
           PreparedStatement hp = c.prepareStatement("SELECT everest.handler_position(?)")) {
        ps.setString(1, handler);
        ps.setLong(2, p1 + 1);
        ps.executeQuery();
        hp.setString(1, handler);
        try (ResultSet rs = hp.executeQuery()) {
          rs.next();
          step("save_handler_position(\"position\" => " + (p1 + 1) + ")", "handler_position " + rs.getLong(1),
              "handler_position " + (p1 + 1));
        }
      }
      List<Long> batch = new ArrayList<>();
      c.setAutoCommit(false);  // read a batch and save its checkpoint in one transaction
      try (PreparedStatement read = c.prepareStatement(
               "SELECT * FROM everest.read_handler_events(handler => ?, source => '$all', max_count => 10)");
           PreparedStatement save = c.prepareStatement(
               "SELECT everest.save_handler_position(handler => ?, \"position\" => ?)")) {
        read.setString(1, handler);
        try (ResultSet rs = read.executeQuery()) {
          while (rs.next()) batch.add(rs.getLong("position"));
        }
        save.setString(1, handler);
        save.setLong(2, batch.get(batch.size() - 1));
        save.executeQuery();
        c.commit();
      } catch (SQLException | RuntimeException e) {
        c.rollback();
        throw e;
      } finally {
        c.setAutoCommit(true);
      }
      StringJoiner got = new StringJoiner(" ");
      batch.forEach(p -> got.add(p.toString()));
      step("read_handler_events after " + (p1 + 1), got + "; saved " + batch.get(batch.size() - 1) + " in the same transaction",
          p3 + "; saved " + p3 + " in the same transaction");

      // g. the position column's Java type
      try (PreparedStatement ps = c.prepareStatement("SELECT position FROM everest.read_all_forward(?, 10)")) {
        ps.setLong(1, p1);
        StringJoiner positions = new StringJoiner(" ");
        Set<String> types = new TreeSet<>();
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            positions.add(String.valueOf(rs.getLong("position")));
            types.add(rs.getObject("position").getClass().getSimpleName());
          }
        }
        step("read_all_forward", "positions " + positions + " as " + String.join("/", types),
            "positions " + p1 + " " + (p1 + 1) + " " + p3 + " as Long");
      }

      // Pitfall: setString without the cast (and without stringtype=unspecified) sends varchar.
      step("pitfall: setString without ::jsonb",
          sqlstateOf(c, "SELECT * FROM everest.append_events(?, ?)", stream, events),
          "42883 function everest.append_events(character varying, character varying) does not exist");
    }
    System.exit(failed ? 1 : 0);
  }
}
