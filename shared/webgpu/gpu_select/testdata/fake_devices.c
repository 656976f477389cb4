/* Drives gpu_select_layer.c as the Vulkan loader would, over a fake next layer: three NVIDIA GPUs
 * listed out of PCI order and another vendor's GPU on a lower bus, which nvidia-smi does not count.
 * select_test.ts builds it (cc fake_devices.c -ldl) and runs it with the layer's .so path; it prints
 * "all ok" or each failed check. */
#include <vulkan/vk_layer.h>
#include <vulkan/vulkan.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NDEV 4
struct fake_dev { void *disp; uint32_t bus; uint32_t vendor; const char *name; };
static struct fake_dev devs[NDEV] = {
    {0, 0x81, 0x10de, "gpu-bus81"}, {0, 0x01, 0x1002, "igpu-bus01"}, {0, 0x05, 0x10de, "gpu-bus05"}, {0, 0x41, 0x10de, "gpu-bus41"}};
static int inst_disp;
static struct { void *disp; } fake_inst = {&inst_disp};

static VKAPI_ATTR VkResult VKAPI_CALL n_create(const VkInstanceCreateInfo *ci, const VkAllocationCallbacks *a, VkInstance *p) {
  (void)ci; (void)a; *p = (VkInstance)&fake_inst; return VK_SUCCESS;
}
static VKAPI_ATTR void VKAPI_CALL n_destroy(VkInstance i, const VkAllocationCallbacks *a) { (void)i; (void)a; }
static VKAPI_ATTR VkResult VKAPI_CALL n_enum(VkInstance i, uint32_t *n, VkPhysicalDevice *d) {
  (void)i;
  if (!d) { *n = NDEV; return VK_SUCCESS; }
  uint32_t k = *n < NDEV ? *n : NDEV;
  for (uint32_t j = 0; j < k; j++) d[j] = (VkPhysicalDevice)&devs[j];
  *n = k; return k < NDEV ? VK_INCOMPLETE : VK_SUCCESS;
}
static VKAPI_ATTR VkResult VKAPI_CALL n_groups(VkInstance i, uint32_t *n, VkPhysicalDeviceGroupProperties *g) {
  (void)i;
  if (!g) { *n = NDEV; return VK_SUCCESS; }
  uint32_t k = *n < NDEV ? *n : NDEV;
  for (uint32_t j = 0; j < k; j++) { g[j].physicalDeviceCount = 1; g[j].physicalDevices[0] = (VkPhysicalDevice)&devs[j]; }
  *n = k; return k < NDEV ? VK_INCOMPLETE : VK_SUCCESS;
}
static VKAPI_ATTR VkResult VKAPI_CALL n_exts(VkPhysicalDevice d, const char *l, uint32_t *n, VkExtensionProperties *p) {
  (void)d; (void)l;
  if (!p) { *n = 1; return VK_SUCCESS; }
  if (*n < 1) return VK_INCOMPLETE;
  memset(p, 0, sizeof *p); strcpy(p->extensionName, VK_EXT_PCI_BUS_INFO_EXTENSION_NAME); *n = 1; return VK_SUCCESS;
}
static VKAPI_ATTR void VKAPI_CALL n_props(VkPhysicalDevice d, VkPhysicalDeviceProperties *p) {
  memset(p, 0, sizeof *p); strcpy(p->deviceName, ((struct fake_dev *)d)->name); p->vendorID = ((struct fake_dev *)d)->vendor;
}
static VKAPI_ATTR void VKAPI_CALL n_props2(VkPhysicalDevice d, VkPhysicalDeviceProperties2 *p) {
  n_props(d, &p->properties);
  VkPhysicalDevicePCIBusInfoPropertiesEXT *pci = p->pNext;
  if (pci && pci->sType == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT) {
    pci->pciDomain = 0; pci->pciBus = ((struct fake_dev *)d)->bus; pci->pciDevice = 0; pci->pciFunction = 0;
  }
}
static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL n_gipa(VkInstance i, const char *name) {
  (void)i;
#define F(s, f) if (!strcmp(name, s)) return (PFN_vkVoidFunction)f;
  F("vkCreateInstance", n_create) F("vkDestroyInstance", n_destroy) F("vkEnumeratePhysicalDevices", n_enum)
  F("vkEnumeratePhysicalDeviceGroups", n_groups) F("vkEnumerateDeviceExtensionProperties", n_exts)
  F("vkGetPhysicalDeviceProperties", n_props) F("vkGetPhysicalDeviceProperties2", n_props2)
  return NULL;
}

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

int main(int argc, char **argv) {
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) { printf("dlopen: %s\n", dlerror()); return 2; }
  PFN_vkNegotiateLoaderLayerInterfaceVersion neg = (PFN_vkNegotiateLoaderLayerInterfaceVersion)dlsym(lib, "vkNegotiateLoaderLayerInterfaceVersion");
  VkNegotiateLayerInterface ni = {LAYER_NEGOTIATE_INTERFACE_STRUCT, NULL, 2, NULL, NULL, NULL};
  CHECK(neg(&ni) == VK_SUCCESS, "negotiate");
  PFN_vkGetInstanceProcAddr gipa = ni.pfnGetInstanceProcAddr;
  CHECK(gipa(NULL, "vkEnumerateInstanceExtensionProperties") == NULL, "NULL instance, other name: NULL");
  CHECK(gipa(NULL, "vkGetInstanceProcAddr") != NULL, "NULL instance: gipa");
  PFN_vkCreateInstance create = (PFN_vkCreateInstance)gipa(NULL, "vkCreateInstance");
  VkLayerInstanceLink link = {NULL, n_gipa, NULL};
  VkLayerInstanceCreateInfo chain = {VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO, NULL, VK_LAYER_LINK_INFO, {0}};
  chain.u.pLayerInfo = &link;
  VkInstanceCreateInfo ci = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, &chain, 0, NULL, 0, NULL, 0, NULL};
  VkInstance inst;
  CHECK(create(&ci, NULL, &inst) == VK_SUCCESS, "create");
  CHECK(chain.u.pLayerInfo == NULL, "chain advanced");
  PFN_vkEnumeratePhysicalDevices en = (PFN_vkEnumeratePhysicalDevices)gipa(inst, "vkEnumeratePhysicalDevices");
  PFN_vkEnumeratePhysicalDeviceGroups eg = (PFN_vkEnumeratePhysicalDeviceGroups)gipa(inst, "vkEnumeratePhysicalDeviceGroups");

  const char *want[] = {"gpu-bus05", "gpu-bus41", "gpu-bus81", "igpu-bus01"};
  for (int idx = 0; idx < NDEV; idx++) {
    char s[8]; snprintf(s, sizeof s, "%d", idx); setenv("KVRELAY_GPU", s, 1);
    uint32_t n = 99;
    CHECK(en(inst, &n, NULL) == VK_SUCCESS && n == 1, "count %u", n);
    VkPhysicalDevice d[4] = {0};
    n = 0;
    CHECK(en(inst, &n, d) == VK_INCOMPLETE && n == 0, "incomplete, n %u", n);
    n = 4;
    CHECK(en(inst, &n, d) == VK_SUCCESS && n == 1, "fill");
    CHECK(!strcmp(((struct fake_dev *)d[0])->name, want[idx]), "KVRELAY_GPU=%d got %s", idx, ((struct fake_dev *)d[0])->name);
    VkPhysicalDeviceGroupProperties g[2];
    memset(g, 0, sizeof g);
    g[0].sType = g[1].sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_GROUP_PROPERTIES;
    n = 2;
    CHECK(eg(inst, &n, g) == VK_SUCCESS && n == 1 && g[0].physicalDeviceCount == 1 && g[0].physicalDevices[0] == d[0], "groups");
    n = 0;
    CHECK(eg(inst, &n, g) == VK_INCOMPLETE && n == 0, "groups incomplete");
  }
  setenv("KVRELAY_GPU", "4", 1);
  uint32_t n = 9;
  CHECK(en(inst, &n, NULL) == VK_SUCCESS && n == 0, "none: %u", n);
  unsetenv("KVRELAY_GPU");
  n = 9;
  CHECK(en(inst, &n, NULL) == VK_SUCCESS && n == NDEV, "unset: pass-through %u", n);
  PFN_vkDestroyInstance destroy = (PFN_vkDestroyInstance)gipa(inst, "vkDestroyInstance");
  destroy(inst, NULL);
  CHECK(en(inst, &n, NULL) == VK_ERROR_INITIALIZATION_FAILED, "after destroy");
  printf(fails ? "%d failures\n" : "all ok\n", fails);
  return fails != 0;
}
