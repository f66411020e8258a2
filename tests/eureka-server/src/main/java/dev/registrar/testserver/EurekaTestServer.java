package dev.registrar.testserver;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.cloud.netflix.eureka.server.EnableEurekaServer;
import org.springframework.context.annotation.Bean;
import org.springframework.security.config.Customizer;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.web.SecurityFilterChain;

/**
 * A plain Spring Cloud Netflix Eureka server for registrar's tests.
 *
 * Basic auth is off unless registrar.test.auth=true; then every request needs the user
 * spring.security.user.name / spring.security.user.password (CSRF off, as Eureka clients
 * send no token).
 */
@SpringBootApplication
@EnableEurekaServer
public class EurekaTestServer {
    public static void main(String[] args) {
        SpringApplication.run(EurekaTestServer.class, args);
    }

    @Bean
    SecurityFilterChain security(HttpSecurity http,
                                 @Value("${registrar.test.auth:false}") boolean auth) throws Exception {
        http.csrf(csrf -> csrf.disable());
        if (auth) {
            http.authorizeHttpRequests(a -> a.anyRequest().authenticated())
                .httpBasic(Customizer.withDefaults());
        } else {
            http.authorizeHttpRequests(a -> a.anyRequest().permitAll());
        }
        return http.build();
    }
}
